"""Writes the synthetic dataset as the field's NTU preparation writes NTU RGB+D.

`{split}_position.npy` (float32 `(N, 3, T, 25, 2)`) and `{split}_label.pkl` (pickled
`(sample_names, labels)`), the layout of ST-GCN/AimCLR, for a train and a val split of
one benchmark (`splits`), plus `manifest.json`. Command line:
`python -m freqjax.data.synthetic --out DIR`.
"""
import argparse
import json
import os
import pickle
from typing import Sequence

import numpy as np

from freqjax.data import transform
from freqjax.data.synthetic import actions, sampling, splits
from freqjax.text.classes import SYNTHETIC_CLASS_NAMES


def write_dataset(out_dir: str, num_samples: int = 4200, seed: int = 0, num_frames: int = 50,
                  benchmark: str = "xperformer", num_performers: int = 20,
                  num_views: int = 3, preprocess: bool = True, *,
                  elevation_degrees: float = 0.0, roll_degrees: float = 0.0) -> dict:
  """Writes `{train,val}_position.npy`, `{train,val}_label.pkl` and `manifest.json`.

  With `preprocess` (default) every sample goes through the field's 50-frame transform
  (`freqjax.data.transform.aimclr_transform`: centred on joint 21, valid frames resized to
  `num_frames`, rotated to the shoulder axis), exactly as `python -m freqjax.data.prepare`
  writes NTU; without it the raw camera-space sequences (zero-padded) are written.

  `{split}_position.npy` is float32 `(N, 3, T, 25, 2)`; `{split}_label.pkl` pickles
  `(sample_names, labels)` (lists of str and int) as the NTU preparation of
  ST-GCN/AimCLR does. Benchmarks: `xperformer` trains on the odd performer ids and
  validates on the even ones; `xview` trains on views 2..V and validates on view 1.
  `elevation_degrees`, `roll_degrees`: the harder variant (see `sampling.generate`),
  recorded in the manifest. Returns the manifest (counts per class per split, frames,
  seed, benchmark, ...).
  """
  if benchmark not in splits.BENCHMARKS:
    raise ValueError(f"synthetic data: unknown benchmark {benchmark!r}; use one of "
                     f"{', '.join(splits.BENCHMARKS)}.")
  if benchmark == "xview" and num_views < 2:
    raise ValueError("synthetic data: the xview benchmark needs num_views >= 2 (view 1 "
                     f"validates, the others train); got num_views={num_views}.")
  x, labels, names = sampling.generate(num_samples, seed, num_frames, num_performers,
                                       num_views, elevation_degrees=elevation_degrees,
                                       roll_degrees=roll_degrees)
  if preprocess:
    x = np.stack([transform.aimclr_transform(sample, num_frames) for sample in x])
  is_train, train_ids = splits.train_mask(names, benchmark, num_performers, num_views)
  os.makedirs(out_dir, exist_ok=True)
  split_counts = {}
  for split, mask in (("train", is_train), ("val", ~is_train)):
    idx = np.flatnonzero(mask)
    np.save(os.path.join(out_dir, f"{split}_position.npy"), x[idx])
    with open(os.path.join(out_dir, f"{split}_label.pkl"), "wb") as f:
      pickle.dump(([names[i] for i in idx], [int(labels[i]) for i in idx]), f)
    split_counts[split] = {
        "num_samples": int(len(idx)),
        "per_class": np.bincount(labels[idx], minlength=len(SYNTHETIC_CLASS_NAMES)).tolist()}
  manifest = {
      "dataset": "freqjax synthetic skeleton actions", "benchmark": benchmark, "seed": seed,
      "num_samples": num_samples, "num_frames": num_frames, "num_performers": num_performers,
      "num_views": num_views, "preprocessed": preprocess,
      "elevation_degrees": elevation_degrees, "roll_degrees": roll_degrees,
      ("train_performers" if benchmark == "xperformer" else "train_views"): train_ids,
      "class_names": list(SYNTHETIC_CLASS_NAMES),
      "two_person_classes": sorted(actions.TWO_PERSON_CLASSES),
      "splits": split_counts}
  with open(os.path.join(out_dir, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
  return manifest


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(
      prog="python -m freqjax.data.synthetic",
      description="Writes freqjax's synthetic skeleton action dataset (NTU RGB+D layout).")
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--num-samples", type=int, default=4200)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--num-frames", type=int, default=50)
  parser.add_argument("--benchmark", choices=splits.BENCHMARKS, default="xperformer")
  parser.add_argument("--raw", action="store_true",
                      help="write raw camera-space sequences, without the 50-frame transform")
  parser.add_argument("--elevation-degrees", type=float, default=0.0,
                      help="harder variant: camera elevation uniform in +-this (degrees)")
  parser.add_argument("--roll-degrees", type=float, default=0.0,
                      help="harder variant: camera roll uniform in +-this (degrees)")
  args = parser.parse_args(argv)
  manifest = write_dataset(args.out, args.num_samples, args.seed, args.num_frames,
                           args.benchmark, preprocess=not args.raw,
                           elevation_degrees=args.elevation_degrees,
                           roll_degrees=args.roll_degrees)
  print(f"wrote {args.out}: {manifest['splits']['train']['num_samples']} train, "
        f"{manifest['splits']['val']['num_samples']} val samples ({args.benchmark})")
