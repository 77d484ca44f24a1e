"""Multi-stream ensemble: a weighted sum of saved test logits (joint, bone, motion).

    python -m freqjax.evaluation.ensemble \\
        --logits joint=runs/j/eval/linear/test_logits.npy \\
        --logits bone=runs/b/eval/linear/test_logits.npy \\
        --logits motion=runs/m/eval/linear/test_logits.npy \\
        [--weights 0.6,0.6,0.4] [--labels test_labels.npy] [--out runs/ensemble]

Fusion follows AimCLR's `ensemble_ntu_cs.py` (and CTR-GCN's `ensemble.py`): the *raw*
scores of each stream (the `fc` outputs, no softmax) are multiplied by the stream's weight
and summed; top-1 is the argmax of the sum. Default weights by stream name: joint 0.6,
bone 0.6, motion 0.4 (AimCLR's `alpha`). One difference: AimCLR fuses the logits it
saved at the epoch that was best *on test*; freqjax's linear report saves the last
epoch's, so the fused number here involves no selection on test.

Every run's `test_labels.npy` (next to its logits) must agree with the others and with
`--labels`, so streams evaluated on differently ordered test sets cannot be fused by
accident. `--out DIR` also writes a full report (see `freqjax.evaluation.report`).
"""
import argparse
import errno
from collections.abc import Mapping, Sequence
import json
from pathlib import Path
import sys
from typing import Any

import numpy as np

from freqjax import cli
from freqjax.evaluation import metrics
from freqjax.evaluation import report

DEFAULT_WEIGHTS = {"joint": 0.6, "bone": 0.6, "motion": 0.4}


class EnsembleInputError(cli.UserError, ValueError):
  """The saved logits or labels cannot be fused as given."""


def fuse_logits(logits: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
  """`Σ_s weights[s] · logits[s]` over the streams s, on raw scores, in float64.

  Args:
    logits: stream name -> `(N_test, C)` scores; all the same shape.
    weights: stream name -> weight; exactly the streams of `logits`.

  Returns:
    `(N_test, C)` float64 fused scores.
  """
  if not logits:
    raise EnsembleInputError("no streams to fuse.")
  if set(weights) != set(logits):
    raise EnsembleInputError(f"weights are given for {sorted(weights)} but the streams are "
                             f"{sorted(logits)}.")
  shapes = {name: np.shape(scores) for name, scores in logits.items()}
  first = next(iter(shapes.values()))
  if len(first) != 2 or any(shape != first for shape in shapes.values()):
    raise EnsembleInputError(f"every stream's logits must have the same (N_test, C) shape; "
                             f"got {shapes}.")
  fused = np.zeros(first, np.float64)
  for name, scores in logits.items():
    scores = np.asarray(scores, np.float64)
    if not np.all(np.isfinite(scores)):
      raise EnsembleInputError(f"the {name} logits contain NaN or inf.")
    fused += float(weights[name]) * scores
  return fused


def parse_streams(specs: Sequence[str]) -> dict[str, Path]:
  """`["joint=path", ...]` -> `{"joint": Path(path), ...}` in the given order."""
  streams: dict[str, Path] = {}
  for spec in specs:
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
      raise EnsembleInputError(f"--logits {spec!r}: expected NAME=PATH, e.g. "
                               "joint=runs/j/eval/linear/test_logits.npy.")
    if name in streams:
      raise EnsembleInputError(f"--logits: the stream name {name!r} is given twice.")
    streams[name] = Path(path)
  return streams


def parse_weights(text: str | None, names: Sequence[str]) -> dict[str, float]:
  """`"0.6,0.6,0.4"` in the order of `names`, or the defaults by stream name."""
  if text is None:
    unknown = [name for name in names if name not in DEFAULT_WEIGHTS]
    if unknown:
      raise EnsembleInputError(f"no default weight for stream(s) {unknown} (defaults exist for "
                               f"{sorted(DEFAULT_WEIGHTS)}); pass --weights, one per --logits.")
    return {name: DEFAULT_WEIGHTS[name] for name in names}
  try:
    values = [float(v) for v in text.split(",")]
  except ValueError:
    raise EnsembleInputError(f"--weights {text!r}: expected comma-separated numbers.") from None
  if len(values) != len(names):
    raise EnsembleInputError(f"--weights has {len(values)} values but {len(names)} streams "
                             f"were given ({', '.join(names)}).")
  return dict(zip(names, values))


def _load_array(path: Path, what: str) -> np.ndarray:
  if path.is_dir():
    raise IsADirectoryError(errno.EISDIR, f"a directory; {what} must be a .npy file", str(path))
  if not path.is_file():
    raise FileNotFoundError(f"{what} file {path} does not exist.")
  try:
    return np.load(path, allow_pickle=False)
  except ValueError as e:
    raise EnsembleInputError(f"{what} file {path} is not a plain .npy array: {e}") from None


def _check_same_labels(labels: np.ndarray, path: Path, reference: np.ndarray,
                       reference_path: Path) -> None:
  if labels.shape != reference.shape or not np.array_equal(labels, reference):
    detail = (f"shapes {labels.shape} vs {reference.shape}" if labels.shape != reference.shape
              else f"{int(np.sum(labels != reference))} of {labels.size} labels differ, first "
                   f"at index {int(np.argmax(labels != reference))}")
    raise EnsembleInputError(
        f"test labels in {path} disagree with {reference_path} ({detail}): the runs were "
        "evaluated on different or differently ordered test sets and cannot be fused.")


def run_ensemble(streams: Mapping[str, Path], weights: Mapping[str, float] | None = None,
                 labels_path: Path | None = None, out_dir: Path | None = None
                 ) -> tuple[dict[str, Any], str]:
  """Loads, checks and fuses the streams; returns (results, summary text).

  Args:
    streams: stream name -> path of its `test_logits.npy`.
    weights: stream name -> weight (default: `DEFAULT_WEIGHTS`).
    labels_path: the test labels; default: the runs' own `test_labels.npy`.
    out_dir: if given, a full report is written there.
  """
  weights = dict(weights) if weights is not None else parse_weights(None, list(streams))
  logits, class_names = {}, None
  reference, reference_path = None, None
  if labels_path is not None:
    reference, reference_path = _load_array(Path(labels_path), "--labels"), Path(labels_path)
  for name, path in streams.items():
    logits[name] = _load_array(path, f"the {name} logits")
    labels_file = path.parent / "test_labels.npy"
    if labels_file.is_file():
      labels = _load_array(labels_file, f"the {name} labels")
      if reference is None:
        reference, reference_path = labels, labels_file
      else:
        _check_same_labels(labels, labels_file, reference, reference_path)
    results_file = path.parent / "results.json"
    if class_names is None and results_file.is_file():
      try:
        class_names = json.loads(results_file.read_text()).get("class_names")
      except (ValueError, AttributeError):
        raise EnsembleInputError(f"{results_file} is not a freqjax results.json; move it "
                                 "away or fix it.") from None
  if reference is None:
    raise EnsembleInputError("no test labels: none of the runs has a test_labels.npy next to "
                             "its logits; pass --labels.")
  fused = fuse_logits(logits, weights)
  try:
    metrics.check_scores_and_labels(fused, reference, what="the fused logits")
  except ValueError as e:
    raise EnsembleInputError(f"{e} (labels from {reference_path})") from None
  if class_names is not None and len(class_names) != fused.shape[1]:
    class_names = None

  per_stream = {name: metrics.topk_accuracies(scores, reference, (1, 5))
                for name, scores in logits.items()}
  fused_acc = metrics.topk_accuracies(fused, reference, (1, 5))
  results = {"weights": weights, "per_stream": per_stream, "fused": fused_acc,
             "num_test_samples": int(fused.shape[0]), "accuracy_unit": "percent"}
  lines = [f"ensemble of {len(streams)} streams on {fused.shape[0]} test samples (raw logits "
           "× weight, summed)"]
  for name in streams:
    lines.append(f"  {name:<8} weight {weights[name]:<5g} top-1 {per_stream[name]['top1']:.2f} %"
                 f"   top-5 {per_stream[name]['top5']:.2f} %")
  lines.append(f"  fused                  top-1 {fused_acc['top1']:.2f} %   "
               f"top-5 {fused_acc['top5']:.2f} %")
  if out_dir is not None:
    lines.append(report.write_report(
        out_dir, protocol="ensemble", test_logits=fused, test_labels=reference,
        class_names=class_names,
        config={"streams": {name: str(path) for name, path in streams.items()},
                "weights": weights, "labels": str(reference_path)},
        extra={"per_stream": per_stream}))
  return results, "\n".join(lines)


@cli.report_errors("python -m freqjax.evaluation.ensemble")
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m freqjax.evaluation.ensemble", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--logits", action="append", required=True, metavar="NAME=PATH",
                      help="a stream's test_logits.npy; repeat for each stream")
  parser.add_argument("--weights", default=None,
                      help="comma-separated, one per --logits in order (default by name: "
                           "joint 0.6, bone 0.6, motion 0.4)")
  parser.add_argument("--labels", default=None, type=Path,
                      help="test labels .npy (default: the runs' test_labels.npy)")
  parser.add_argument("--out", default=None, type=Path, help="write a full report here")
  cli.add_traceback_flag(parser)
  args = parser.parse_args(argv)
  streams = parse_streams(args.logits)
  weights = parse_weights(args.weights, list(streams))
  _, summary = run_ensemble(streams, weights, args.labels, args.out)
  print(summary)
  return 0


if __name__ == "__main__":
  sys.exit(main())
