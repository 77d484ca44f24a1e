"""Raw NTU RGB+D 60/120 and PKU-MMD I/II to the field's training files.

    python -m freqjax.data.prepare {ntu60,ntu120,pku1,pku2} --raw DIR --out DIR \\
        [--frames 50] [--workers 2]

For each benchmark B (NTU-60: xsub, xview; NTU-120: xsub, xset; PKU-MMD: xsub, xview)
and part P (AimCLR's `train` and `val`) it writes, into `OUT/B/`:

- `P_position.npy`: `(N, 3, T, 25, 2)` float32 (samples, xyz in metres, frames, NTU
  joints, persons) after SkeletonCLR/AimCLR's T-frame transform (`freqjax.data.transform`),
  as AimCLR's `feeder/preprocess_ntu.py` writes it; with `--frames raw` (or 0) instead
  `P_data.npy`, `(N, 3, 300, 25, 2)` raw coordinates zero-padded after the last frame, as
  st-gcn/AimCLR's `tools/ntu_gendata.py` writes it;
- `P_label.pkl`: the pickled pair `(sample_names, labels)`, a list of file names
  (`S001C001P001R001A001.skeleton`; PKU clips `F002V001C013L004.skeleton`) and a list of
  int class ids, as AimCLR's gendata writes it;
- `P_manifest.json`: samples, class counts, frames, transform, source directory, what
  was skipped (samples with no skeleton; PKU videos its split file leaves out), and under
  `inputs` what the part was made from: the raw folders (absolute, links resolved), the
  number of raw files used and a digest of their names, and for PKU-MMD the split files.

Samples are in file-name order. NTU: every `*.skeleton` under `--raw` (searched
recursively, so NTU-120's two archives can sit side by side); `ntu60` takes setups 1-17.
Samples whose file has no body in any frame (the dataset's "missing skeletons") are
skipped and counted, as are PKU clips whose coordinates are all zero. PKU: `--raw` holds
one sub-directory whose name contains "skeleton" and one whose name contains "label"
(or pass `--skeleton_dir`/`--label_dir`) and, anywhere below, the official split files
(`freqjax.data.pku`).

Each file is written under a temporary name and renamed when complete, the manifest
last, so a part is either whole or absent; a re-run skips parts whose three files exist.
A re-run whose settings or inputs differ from a finished part's manifest (another --raw,
raw files added or removed, other --frames) refuses, naming the difference: a folder is
never half one dataset and half another. Outputs of an older freqjax, whose manifests
lack `inputs`, are refused too (delete them, or choose another --out).

Bad input stops the run with one line naming the file and the problem (exit status 2),
leaving no partial file behind. The worker processes end with prepare, even when it is
killed; a worker killed by the system (out of memory) stops the run with one line.
"""
import argparse
import concurrent.futures
from concurrent.futures.process import BrokenProcessPool
import dataclasses
import errno
import functools
import hashlib
import json
import multiprocessing
import os
import pickle
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
from tqdm import tqdm

from freqjax import cli
from freqjax.data import ntu
from freqjax.data import pku
from freqjax.data import transform
from freqjax.data.errors import DataFormatError

DATASETS = ("ntu60", "ntu120", "pku1", "pku2")
DEFAULT_FRAMES = 50
RAW = "raw (300 frames, zero-padded)"
TRANSFORM = "skeletonclr/aimclr (centre joint 21, resize valid frames, shoulder rotation)"
# Fixed size of the .npy header written before the count of samples is known; numpy's
# own headers for these shapes are 128 bytes too.
_NPY_HEADER_BYTES = 128
_PARTIAL = ".partial"
# How often a worker checks that prepare's process is still alive.
_PARENT_POLL_SECONDS = 0.5
# What the `inputs` of a manifest are called in messages.
_INPUT_NAMES = {"raw": "--raw", "skeleton_dir": "--skeleton_dir", "label_dir": "--label_dir",
                "split_file": "split file", "raw_files": "raw files used"}


@dataclasses.dataclass
class _Sample:
  """One sample as a worker hands it back; `x` is None when the sample is skipped."""
  name: str
  label: int
  x: np.ndarray | None
  skipped: str | None = None  # "missing" or "no_valid_frame"
  cropped: bool = False


class _NpyWriter:
  """Streams `(N, *sample_shape)` float32 rows to a `.npy` file whose N is known at the end.

  Rows go to `path + '.partial'` after a reserved header; `finish` writes the header and
  renames, `abort` deletes. Memory use is one row, whatever N.
  """

  def __init__(self, path: str, sample_shape: tuple[int, ...]):
    self.path = path
    self.sample_shape = tuple(sample_shape)
    self.count = 0
    self._partial = path + _PARTIAL
    self._file = open(self._partial, "wb")
    self._file.write(b"\0" * _NPY_HEADER_BYTES)

  def append(self, row: np.ndarray) -> None:
    if row.shape != self.sample_shape:
      raise ValueError(f"{self.path}: row of shape {row.shape}, expected {self.sample_shape}")
    self._file.write(np.ascontiguousarray(row, dtype="<f4").tobytes())
    self.count += 1

  def finish(self) -> None:
    shape = (self.count,) + self.sample_shape
    header = "{'descr': '<f4', 'fortran_order': False, 'shape': %r, }" % (shape,)
    # npy format 1.0: magic, version, little-endian uint16 header length, header padded
    # with spaces and ending in a newline.
    header = header.ljust(_NPY_HEADER_BYTES - 10 - 1) + "\n"
    self._file.seek(0)
    self._file.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) +
                     header.encode("latin1"))
    self._file.close()
    os.replace(self._partial, self.path)

  def abort(self) -> None:
    self._file.close()
    if os.path.exists(self._partial):
      os.remove(self._partial)


def _write_atomic(path: str, data: bytes) -> None:
  with open(path + _PARTIAL, "wb") as f:
    f.write(data)
  os.replace(path + _PARTIAL, path)


def _file_names(part: str, frames: int | None) -> tuple[str, str, str]:
  data = f"{part}_position.npy" if frames else f"{part}_data.npy"
  return data, f"{part}_label.pkl", f"{part}_manifest.json"


def _settings(dataset: str, frames: int | None) -> dict:
  return {"dataset": dataset,
          "frames": frames if frames else transform.MAX_FRAMES,
          "transform": TRANSFORM if frames else RAW}


def _digest(names: Iterable[str]) -> str:
  return hashlib.sha256("\n".join(names).encode()).hexdigest()


def _is_done(out: str, directory: str, part: str, dataset: str, frames: int | None,
             inputs: dict) -> bool:
  """Whether the part's three files exist; raises if they hold other settings or inputs."""
  paths = [os.path.join(directory, name) for name in _file_names(part, frames)]
  if not all(os.path.exists(path) for path in paths):
    return False
  try:
    with open(paths[2], encoding="utf-8") as f:
      manifest = json.load(f)
  except ValueError as error:  # JSON or UTF-8
    raise DataFormatError(paths[2], f"not a manifest ({error}); delete it to redo the part")
  wanted = _settings(dataset, frames)
  found = {key: manifest.get(key) for key in wanted}
  if found != wanted:
    raise DataFormatError(paths[2], f"holds {found['dataset']} at {found['frames']} frames "
                          f"({found['transform']}); this run asks for {dataset} at "
                          f"{wanted['frames']} frames: choose another --out")
  redo = f"choose another --out, or delete {out} to prepare it again"
  if "inputs" not in manifest:
    raise DataFormatError(paths[2], "written by an older freqjax that did not record its "
                          f"inputs (--raw, the raw files), so a re-run cannot check them: {redo}")
  differ = [f"{_INPUT_NAMES[key]} {manifest['inputs'].get(key)!r} (this run: {value!r})"
            for key, value in inputs.items()
            if manifest["inputs"].get(key) != value and key != "raw_files_sha256"]
  if not differ and manifest["inputs"].get("raw_files_sha256") != inputs["raw_files_sha256"]:
    differ = [f"the names of the {inputs['raw_files']} raw files differ"]
  if differ:
    raise DataFormatError(paths[2], f"made from other inputs than this run's: "
                          f"{'; '.join(differ)}. A folder holds one dataset: {redo}")
  return True


class _Part:
  """The output of one benchmark part, filled sample by sample."""

  def __init__(self, directory: str, benchmark: str, part: str, dataset: str,
               frames: int | None, num_classes: int, source: str, inputs: dict,
               extra: dict):
    os.makedirs(directory, exist_ok=True)
    self.directory = directory
    self.benchmark = benchmark
    self.part = part
    self.dataset = dataset
    self.frames = frames
    self.num_classes = num_classes
    self.source = source
    self.inputs = inputs
    self.extra = extra
    self.names: list[str] = []
    self.labels: list[int] = []
    self.skipped: dict[str, list[str]] = {"missing": [], "no_valid_frame": []}
    self.cropped = 0
    data_name, _, _ = _file_names(part, frames)
    sample_shape = (3, frames or transform.MAX_FRAMES, ntu.NUM_JOINTS, ntu.MAX_BODIES)
    self.writer = _NpyWriter(os.path.join(directory, data_name), sample_shape)

  def add(self, sample: _Sample) -> None:
    if sample.skipped:
      self.skipped[sample.skipped].append(sample.name)
      return
    self.writer.append(sample.x)
    self.names.append(sample.name)
    self.labels.append(sample.label)
    self.cropped += sample.cropped

  def finish(self) -> dict:
    data_name, label_name, manifest_name = _file_names(self.part, self.frames)
    self.writer.finish()
    # Exactly AimCLR's label file: a tuple of two plain lists.
    _write_atomic(os.path.join(self.directory, label_name),
                  pickle.dumps((list(self.names), [int(label) for label in self.labels])))
    manifest = {
        **_settings(self.dataset, self.frames),
        "benchmark": self.benchmark,
        "split": self.part,
        "source": self.source,
        "data_file": data_name,
        "label_file": label_name,
        "layout": "(N, C=3 xyz metres, T frames, V=25 NTU joints, M=2 persons), float32",
        "shape": [len(self.names), 3, self.writer.sample_shape[1], ntu.NUM_JOINTS,
                  ntu.MAX_BODIES],
        "num_samples": len(self.names),
        "num_classes": self.num_classes,
        "class_counts": np.bincount(np.asarray(self.labels, dtype=np.int64),
                                    minlength=self.num_classes).tolist(),
        "skipped_missing": len(self.skipped["missing"]),
        "skipped_missing_samples": self.skipped["missing"],
        "skipped_no_valid_frame": len(self.skipped["no_valid_frame"]),
        "skipped_no_valid_frame_samples": self.skipped["no_valid_frame"],
        "cropped_to_300_frames": self.cropped,
        **self.extra,
        "inputs": self.inputs,
    }
    _write_atomic(os.path.join(self.directory, manifest_name),
                  (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest

  def abort(self) -> None:
    self.writer.abort()


def _finish_sample(name: str, label: int, xyz: np.ndarray, frames: int | None) -> _Sample:
  """Fits `(3, F, 25, 2)` xyz to 300 frames and applies the T-frame transform if asked."""
  cropped = xyz.shape[1] > transform.MAX_FRAMES
  x = transform.pad_or_crop(xyz)
  if frames:
    if transform.valid_length(x) == 0:
      return _Sample(name, label, None, "no_valid_frame", cropped)
    x = transform.aimclr_transform(x, frames)
  return _Sample(name, label, x, None, cropped)


def _ntu_unit(path: str, frames: int | None) -> list[_Sample]:
  name = os.path.basename(path)
  label = ntu.parse_sample_name(path).label
  xyz, bodies = ntu.read_skeleton(path)
  if not bodies.any():
    return [_Sample(name, label, None, "missing")]
  return [_finish_sample(name, label, xyz, frames)]


def _pku_unit(unit: tuple[str, str, str], phase: str, frames: int | None) -> list[_Sample]:
  _, skeleton_path, label_path = unit
  clips = pku.read_labels(label_path)
  sequence = pku.read_sequence(skeleton_path)
  samples = []
  for clip in clips:
    xyz = pku.cut_clip(sequence, clip, label_path, skeleton_path)
    name = clip.sample_name(phase)
    if not xyz.any():
      samples.append(_Sample(name, clip.label, None, "missing"))
    else:
      samples.append(_finish_sample(name, clip.label, xyz, frames))
  # Names start with the video's prefix, so sorting within a video and taking videos in
  # prefix order gives file-name order overall.
  return sorted(samples, key=lambda sample: sample.name)


def _exit_with_parent(parent_pid: int) -> None:
  """Initializer of a worker process: it exits when prepare's process is gone.

  Without it a worker outlives a killed prepare, waiting forever on the task queue: the
  queue's pipe never reports the parent gone, as the workers hold its ends too.
  """
  def watch():
    while os.getppid() == parent_pid:
      time.sleep(_PARENT_POLL_SECONDS)
    os._exit(1)  # pylint: disable=protected-access
  threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _run(units: Sequence, routes: Sequence[dict[str, str | None]],
         work: Callable[..., list[_Sample]], parts: dict[tuple[str, str], _Part],
         workers: int, progress: bool, description: str) -> list[dict]:
  """Processes `units` (in order) and streams their samples into the pending `parts`.

  `routes[i]` maps each benchmark to the part unit i's samples belong to (None: neither).
  """
  wanted = [i for i, route in enumerate(routes)
            if any((benchmark, part) in parts for benchmark, part in route.items())]
  pool = None
  try:
    if workers > 1 and len(wanted) > 1:
      # "spawn": forking a process that already runs jax's threads can deadlock. An
      # executor rather than multiprocessing.Pool: Pool.terminate() can hang after a worker
      # error, while shutdown(cancel_futures=True) returns.
      pool = concurrent.futures.ProcessPoolExecutor(
          workers, mp_context=multiprocessing.get_context("spawn"),
          initializer=_exit_with_parent, initargs=(os.getpid(),))
      results: Iterable = pool.map(work, [units[i] for i in wanted], chunksize=4)
    else:
      results = map(work, [units[i] for i in wanted])
    bar = tqdm(results, total=len(wanted), desc=description, unit="file",
               disable=not progress, file=sys.stderr)
    for index, samples in zip(wanted, bar):
      for benchmark, part in routes[index].items():
        target = parts.get((benchmark, part))
        if target is not None:
          for sample in samples:
            target.add(sample)
    manifests = [target.finish() for target in parts.values()]
  except BaseException as error:
    for target in parts.values():
      target.abort()
    if isinstance(error, BrokenProcessPool):
      raise cli.UserError(
          f"a worker process ended abruptly, most often killed by the system for lack of "
          f"memory; the unfinished parts were not kept: run again with fewer --workers "
          f"(this run: {workers}) or with more memory free") from None
    raise
  finally:
    if pool is not None:
      pool.shutdown(wait=True, cancel_futures=True)
  return manifests


def _pending_parts(out: str, benchmarks: Iterable[str], dataset: str, frames: int | None,
                   num_classes: int, source: str, inputs: dict[str, dict],
                   extra: dict[str, dict] | None = None) -> dict[tuple[str, str], _Part]:
  """The parts still to write, opened; raises before opening any if a finished one differs.

  `inputs[benchmark]` is what the benchmark's parts are made from (module docstring).
  """
  if os.path.exists(out) and not os.path.isdir(out):
    raise NotADirectoryError(errno.ENOTDIR, "not a directory; --out is the folder that gets "
                             "one sub-folder per benchmark", out)
  pending = [(benchmark, part) for benchmark in benchmarks for part in ntu.SPLITS
             if not _is_done(out, os.path.join(out, benchmark), part, dataset, frames,
                             inputs[benchmark])]
  parts = {}
  try:
    for benchmark, part in pending:
      parts[(benchmark, part)] = _Part(os.path.join(out, benchmark), benchmark, part, dataset,
                                       frames, num_classes, source, inputs[benchmark],
                                       (extra or {}).get(benchmark, {}))
  except BaseException:
    for target in parts.values():
      target.abort()
    raise
  return parts


def prepare_ntu(dataset: str, raw: str, out: str, frames: int | None = DEFAULT_FRAMES,
                workers: int = 2, progress: bool = True) -> list[dict]:
  """Writes `dataset`'s ('ntu60' or 'ntu120') benchmark parts from raw `.skeleton` files.

  Args:
    dataset: 'ntu60' or 'ntu120'.
    raw: a directory with the `.skeleton` files (searched recursively).
    out: output root; parts go to `out/<benchmark>/`.
    frames: T of the transform; None or 0 writes the raw 300-frame arrays.
    workers: processes parsing files.
    progress: show a progress bar on stderr.

  Returns:
    The manifests of the parts written by this call (finished parts are skipped).

  Raises:
    DataFormatError: no `.skeleton` file, a bad file name or content, an action outside
      the dataset's classes, or output of other settings already in `out`.
  """
  if dataset not in ntu.BENCHMARKS:
    raise ValueError(f"unknown NTU dataset {dataset!r}: choose from {sorted(ntu.BENCHMARKS)}")
  if not os.path.isdir(raw):
    raise DataFormatError(raw, "not a directory")
  paths: dict[str, str] = {}
  for directory, _, files in os.walk(raw):
    for name in files:
      if name.endswith(".skeleton"):
        if name in paths:
          raise DataFormatError(os.path.join(directory, name),
                                f"the same sample as {paths[name]}; keep one copy")
        paths[name] = os.path.join(directory, name)
  if not paths:
    raise DataFormatError(raw, "no .skeleton files here; --raw should be the directory of "
                          "the unpacked nturgbd_skeletons_*.zip")
  units, routes = [], []
  for name in sorted(paths):
    sample = ntu.parse_sample_name(paths[name])
    if not ntu.in_dataset(sample, dataset):
      continue
    ntu.check_action(sample, dataset, paths[name])
    units.append(paths[name])
    routes.append({benchmark: ntu.split_of(sample, dataset, benchmark)
                   for benchmark in ntu.BENCHMARKS[dataset]})
  inputs = {"raw": os.path.realpath(raw), "raw_files": len(units),
            "raw_files_sha256": _digest(os.path.basename(path) for path in units)}
  parts = _pending_parts(out, ntu.BENCHMARKS[dataset], dataset, frames,
                         ntu.NUM_CLASSES[dataset], os.path.abspath(raw),
                         {benchmark: inputs for benchmark in ntu.BENCHMARKS[dataset]})
  if not parts:
    return []
  work = functools.partial(_ntu_unit, frames=frames)
  return _run(units, routes, work, parts, workers, progress, dataset)


def _find_subdirectory(raw: str, word: str, flag: str) -> str:
  found = sorted(name for name in os.listdir(raw)
                 if os.path.isdir(os.path.join(raw, name)) and word in name.lower())
  if len(found) != 1:
    raise DataFormatError(raw, f"expected one sub-directory whose name contains {word!r}, "
                          f"found {found or 'none'}; pass {flag}")
  return os.path.join(raw, found[0])


def _find_file(raw: str, names: Sequence[str]) -> str | None:
  for directory, _, files in sorted(os.walk(raw)):
    for name in names:
      if name in files:
        return os.path.join(directory, name)
  return None


def prepare_pku(phase: str, raw: str, out: str, frames: int | None = DEFAULT_FRAMES,
                workers: int = 2, progress: bool = True, skeleton_dir: str | None = None,
                label_dir: str | None = None) -> list[dict]:
  """Writes PKU-MMD `phase`'s ('pku1' or 'pku2') benchmark parts from the raw release.

  Args:
    phase: 'pku1' or 'pku2'.
    raw: the release directory (module docstring); split files are searched below it.
    out: output root; parts go to `out/<benchmark>/`.
    frames: T of the transform; None or 0 writes the raw 300-frame arrays.
    workers: processes reading videos.
    progress: show a progress bar on stderr.
    skeleton_dir, label_dir: override the directories found in `raw`.

  Returns:
    The manifests of the parts written by this call (finished parts are skipped).

  Raises:
    DataFormatError: missing directories, files or split files, malformed files, a clip
      beyond its sequence, a class id out of range, or output of other settings in `out`.
  """
  if phase not in pku.PHASES:
    raise ValueError(f"unknown PKU-MMD phase {phase!r}: choose from {list(pku.PHASES)}")
  if not os.path.isdir(raw):
    raise DataFormatError(raw, "not a directory")
  skeleton_dir = skeleton_dir or _find_subdirectory(raw, "skeleton", "--skeleton_dir")
  label_dir = label_dir or _find_subdirectory(raw, "label", "--label_dir")
  videos = []
  for name in sorted(os.listdir(label_dir)):
    if not name.endswith(".txt"):
      continue
    video = name[:-len(".txt")]
    label_path = os.path.join(label_dir, name)
    if not pku.is_video_id(video, phase):
      raise DataFormatError(label_path, f"not a PKU-MMD {phase} label file name "
                            f"(e.g. {pku.VIDEO_EXAMPLES[phase]}.txt)")
    skeleton_path = os.path.join(skeleton_dir, name)
    if not os.path.exists(skeleton_path):
      raise DataFormatError(label_path, f"no skeleton file {skeleton_path} for this video")
    videos.append((video, skeleton_path, label_path))
  if not videos:
    raise DataFormatError(label_dir, "no PKU-MMD label files (<video>.txt) here")
  videos.sort(key=lambda unit: pku.sample_prefix(unit[0], phase))

  splits, extra = {}, {}
  for benchmark in pku.BENCHMARKS:
    names = pku.SPLIT_FILE_NAMES[phase][benchmark]
    path = _find_file(raw, names)
    if path is None:
      print(f"{raw}: no {benchmark} split file ({' or '.join(names)}); skipping {benchmark}",
            file=sys.stderr)
      continue
    split = pku.read_split_file(path)
    assigned = [split.part_of(video) for video, _, _ in videos]
    if "train" not in assigned:
      raise DataFormatError(path, f"lists none of the {len(videos)} videos of {label_dir} for "
                            f"training (a split file of the other phase?)")
    splits[benchmark] = split
    extra[benchmark] = {"split_file": os.path.abspath(path),
                        "unlisted_videos": sorted(video for (video, _, _), part
                                                  in zip(videos, assigned) if part is None)}
  if not splits:
    raise DataFormatError(raw, "no split file found: expected "
                          f"{pku.SPLIT_FILE_NAMES[phase]['xsub'][0]} or "
                          f"{pku.SPLIT_FILE_NAMES[phase]['xview'][0]} below it")
  routes = [{benchmark: split.part_of(video) for benchmark, split in splits.items()}
            for video, _, _ in videos]
  inputs = {benchmark: {"raw": os.path.realpath(raw),
                        "skeleton_dir": os.path.realpath(skeleton_dir),
                        "label_dir": os.path.realpath(label_dir),
                        "split_file": os.path.realpath(extra[benchmark]["split_file"]),
                        "raw_files": len(videos),
                        "raw_files_sha256": _digest(video for video, _, _ in videos)}
            for benchmark in splits}
  parts = _pending_parts(out, splits, phase, frames, pku.NUM_CLASSES,
                         os.path.abspath(raw), inputs, extra)
  if not parts:
    return []
  work = functools.partial(_pku_unit, phase=phase, frames=frames)
  return _run(videos, routes, work, parts, workers, progress, phase)


def prepare(dataset: str, raw: str, out: str, frames: int | None = DEFAULT_FRAMES,
            workers: int = 2, progress: bool = True, **pku_dirs) -> list[dict]:
  """`prepare_ntu` or `prepare_pku` by `dataset` (one of `DATASETS`)."""
  if dataset in ntu.BENCHMARKS:
    if pku_dirs:
      raise ValueError(f"{sorted(pku_dirs)} apply to PKU-MMD only")
    return prepare_ntu(dataset, raw, out, frames, workers, progress)
  if dataset in pku.PHASES:
    return prepare_pku(dataset, raw, out, frames, workers, progress, **pku_dirs)
  raise ValueError(f"unknown dataset {dataset!r}: choose from {list(DATASETS)}")


def _frames(text: str) -> int:
  if text in ("raw", "0"):
    return 0
  try:
    value = int(text)
  except ValueError:
    value = -1
  if value < 1:
    raise argparse.ArgumentTypeError(f"--frames must be a positive integer or 'raw', got "
                                     f"{text!r}")
  return value


@cli.report_errors("python -m freqjax.data.prepare")
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m freqjax.data.prepare",
      description="Raw NTU RGB+D / PKU-MMD to AimCLR-layout .npy + .pkl files.")
  parser.add_argument("dataset", choices=DATASETS)
  parser.add_argument("--raw", required=True, help="the unpacked raw dataset")
  parser.add_argument("--out", required=True, help="output root (one folder per benchmark)")
  parser.add_argument("--frames", type=_frames, default=DEFAULT_FRAMES,
                      help="frames T of the field's transform (50; 64; ...), or 'raw' for "
                      "the 300-frame zero-padded arrays")
  parser.add_argument("--workers", type=int, default=2, help="parsing processes")
  parser.add_argument("--skeleton_dir", help="PKU-MMD: the skeleton directory")
  parser.add_argument("--label_dir", help="PKU-MMD: the label directory")
  parser.add_argument("--quiet", action="store_true", help="no progress bar")
  cli.add_traceback_flag(parser)
  args = parser.parse_args(argv)
  if args.workers < 1:
    parser.error(f"--workers must be at least 1, got {args.workers}")
  pku_dirs = {key: value for key, value in
              (("skeleton_dir", args.skeleton_dir), ("label_dir", args.label_dir)) if value}
  manifests = prepare(args.dataset, args.raw, args.out, args.frames, args.workers,
                      not args.quiet, **pku_dirs)
  if not manifests:
    print(f"{args.out}: every part is already prepared; nothing to do")
  for manifest in manifests:
    print(f"{os.path.join(args.out, manifest['benchmark'], manifest['data_file'])}: "
          f"{manifest['num_samples']} samples, {manifest['frames']} frames, "
          f"{manifest['skipped_missing']} skipped without skeleton")
  return 0


if __name__ == "__main__":
  sys.exit(main())
