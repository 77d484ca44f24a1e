"""The evaluation report a person reads: `workdir/eval/<protocol>/`.

Files written (all derived from the test scores passed in, so they always agree):
- `results.json`: test top-1/top-5 and mean per-class accuracy (percent), per-class
  accuracy by class name, the ten most-confused pairs, the full config, the checkpoint
  step, sample counts, and whatever `extra` the caller adds (e.g. the linear probe's
  curve and its best-over-epochs number, labelled as such).
- `test_logits.npy` `(N_test, C)` float32 and `test_labels.npy` `(N_test,)` int64, the
  input of `python -m freqjax.evaluation.ensemble`.
- `confusion_matrix.png`: row-normalised (each row is a true class, summing to 100 %),
  with class names; the figure and font sizes scale with the number of classes.
- `most_confused.txt`: the ten most-confused pairs, counted symmetrically (see
  `metrics.most_confused_pairs`).
- `embedding.png`, when the caller passes the test features: a t-SNE map of a seeded
  class-balanced subset of them (at most ~2000), coloured by class
  (`freqjax.visualize.embedding`).

Re-running a protocol never destroys an earlier report silently: if the folder already
holds report files, they are first moved to `history/<created-at of the old report>/`
inside it, and the summary says where they went.
"""
from collections.abc import Mapping, Sequence
import datetime
import json
import math
import os
from pathlib import Path
import re
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
import numpy as np

from freqjax.evaluation import metrics

REPORT_FILES = ("results.json", "test_logits.npy", "test_labels.npy", "confusion_matrix.png",
                "most_confused.txt")
EMBEDDING_FILE = "embedding.png"  # only with test features
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def report_dir(workdir: str | os.PathLike, protocol: str) -> Path:
  """`workdir/eval/<protocol>`; `protocol` is a plain name such as `linear` or `semi_1pct`."""
  if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", protocol):
    raise ValueError(f"protocol {protocol!r} must be a plain folder name (letters, digits, "
                     "'_', '-', '.').")
  return Path(workdir) / "eval" / protocol


def to_jsonable(value: Any) -> Any:
  """Config dicts, numpy and jax values as plain JSON types; NaN/inf become null."""
  if hasattr(value, "to_dict") and callable(value.to_dict):  # ml_collections.ConfigDict
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {str(key): to_jsonable(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_jsonable(item) for item in value]
  if isinstance(value, (bool, np.bool_)):
    return bool(value)
  if isinstance(value, (int, np.integer)):
    return int(value)
  if isinstance(value, (float, np.floating)):
    return float(value) if math.isfinite(value) else None
  if value is None or isinstance(value, str):
    return value
  if isinstance(value, os.PathLike):
    return os.fspath(value)
  if hasattr(value, "__array__"):
    return to_jsonable(np.asarray(value).tolist())
  return str(value)


def write_report(out_dir: str | os.PathLike, *, protocol: str, test_logits, test_labels,
                 class_names: Sequence[str] | None = None,
                 config: Any = None,
                 checkpoint_step: int | None = None,
                 extra: Mapping[str, Any] | None = None,
                 test_features: Any = None) -> str:
  """Writes the report files into `out_dir` and returns a short summary for the CLI.

  Args:
    out_dir: the folder, usually `report_dir(workdir, protocol)`; created if missing.
    protocol: the protocol's name, recorded in `results.json`.
    test_logits: `(N_test, C)` scores (logits, or kNN votes) whose stable argmax is the
      prediction.
    test_labels: `(N_test,)` int labels.
    class_names: C names (defaults to `class 0`, ...).
    config: the full config (a `ConfigDict` or a mapping), stored as a dict.
    checkpoint_step: the pretraining step of the evaluated encoder.
    extra: anything else to record under `results.json["extra"]` (JSON-converted).
    test_features: optional `(N_test, D)` features of the test samples (the encoder's
      pooled output); with at least 5 samples, `embedding.png` maps them in 2-D.

  Returns:
    A few lines: protocol, step, sample count, top-1/top-5, the three most-confused pairs
    and the report's path (and where an earlier report was moved, if any).
  """
  test_logits = np.asarray(test_logits, dtype=np.float32)
  test_labels = np.asarray(test_labels)
  metrics.check_scores_and_labels(test_logits, test_labels, what="test_logits")
  test_labels = test_labels.astype(np.int64)
  num_test, num_classes = test_logits.shape
  names = metrics.resolve_class_names(class_names, num_classes)
  if test_features is not None:
    test_features = np.asarray(test_features, dtype=np.float32)
    if test_features.ndim != 2 or len(test_features) != num_test:
      raise ValueError(f"test_features has shape {test_features.shape}; expected "
                       f"({num_test}, D), one row per test sample of test_logits.")
    if not np.isfinite(test_features).all():
      raise ValueError("test_features hold NaN or infinite values; the encoder diverged.")
    # Imported here: scikit-learn is needed only for this picture.
    from freqjax.visualize import embedding  # pylint: disable=g-import-not-at-top
    if num_test < embedding.MIN_POINTS:
      test_features = None
  files = list(REPORT_FILES) + ([EMBEDDING_FILE] if test_features is not None else [])

  out_dir = Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  moved_to = _move_previous_report(out_dir)

  accuracies = metrics.topk_accuracies(test_logits, test_labels, (1, 5))
  predictions = np.argmax(test_logits, axis=1)
  confusion = metrics.confusion_matrix(test_labels, predictions, num_classes)
  per_class = metrics.per_class_accuracy(confusion)
  support = confusion.sum(axis=1)
  pairs = metrics.most_confused_pairs(confusion, names, n=10)

  created_at = datetime.datetime.now(datetime.timezone.utc)
  results = {
      "protocol": protocol,
      "created_at": created_at.isoformat(timespec="seconds"),
      "checkpoint_step": checkpoint_step,
      "accuracy_unit": "percent",
      "test_top1": accuracies["top1"],
      "test_top5": accuracies["top5"],
      # Mean over the classes present in the test split.
      "mean_class_accuracy": float(np.nanmean(per_class)),
      "num_test_samples": int(num_test),
      "num_classes": int(num_classes),
      "class_names": names,
      "per_class_accuracy": {name: acc for name, acc in zip(names, per_class)},
      "per_class_num_samples": {name: int(n) for name, n in zip(names, support)},
      "most_confused_pairs": pairs,
      "config": config,
      "extra": dict(extra) if extra is not None else {},
      "files": files,
  }
  with open(out_dir / "results.json", "w") as f:
    json.dump(to_jsonable(results), f, indent=2, allow_nan=False)
    f.write("\n")
  np.save(out_dir / "test_logits.npy", test_logits)
  np.save(out_dir / "test_labels.npy", test_labels)
  plot_confusion(confusion, names, out_dir / "confusion_matrix.png",
                 title=f"{protocol}: top-1 {accuracies['top1']:.2f} % on {num_test} test samples")
  (out_dir / "most_confused.txt").write_text(
      f"{protocol}: the ten most-confused class pairs, count(a->b) + count(b->a) "
      f"over {num_test} test samples\n" + metrics.format_confused_pairs(pairs))
  if test_features is not None:
    embedding.plot_embedding(test_features, test_labels, names, out_dir / EMBEDDING_FILE,
                             seed=0, title=f"{protocol}: test features")

  step = "" if checkpoint_step is None else f", checkpoint step {checkpoint_step}"
  lines = [f"{protocol} evaluation{step}: {num_test} test samples, {num_classes} classes",
           f"  test top-1 {accuracies['top1']:.2f} %   top-5 {accuracies['top5']:.2f} %   "
           f"mean per-class {results['mean_class_accuracy']:.2f} %"]
  if pairs:
    lines.append("  most confused: " + "; ".join(
        f"{p['name_a']} <-> {p['name_b']} ({p['total']})" for p in pairs[:3]))
  lines.append(f"  report: {out_dir}")
  if moved_to is not None:
    lines.append(f"  (the earlier report in this folder was moved to {moved_to})")
  return "\n".join(lines)


def plot_confusion(confusion: np.ndarray, class_names: Sequence[str], path: str | os.PathLike,
                   title: str = "") -> None:
  """Saves the row-normalised confusion matrix (percent of each true class) as a PNG.

  Readable from a handful to ~120 classes: the figure grows with C, the tick font
  shrinks (to 5 pt, at 150 dpi beyond 20 classes); cell values are printed only up to 20
  classes. Colours follow the square root of the percentage so small confusions show.
  """
  confusion = np.asarray(confusion, dtype=np.float64)
  num_classes = confusion.shape[0]
  support = confusion.sum(axis=1, keepdims=True)
  normalised = 100.0 * confusion / np.maximum(support, 1)
  side = float(np.clip(0.25 * num_classes + 3.0, 5.0, 32.0))
  font = float(np.clip(9.0 - (num_classes - 20) / 15.0, 5.0, 9.0))
  dpi = 100 if num_classes <= 20 else 150  # small fonts need the pixels
  labels = [name if len(name) <= 32 else name[:31] + "…" for name in class_names]

  fig = Figure(figsize=(side + 1.5, side))
  FigureCanvasAgg(fig)
  ax = fig.add_subplot()
  # A square-root colour scale, so that a 5 % confusion is visible next to a 90 % diagonal.
  image = ax.imshow(normalised, cmap="Blues", norm=PowerNorm(0.5, vmin=0.0, vmax=100.0),
                    interpolation="nearest")
  fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label="% of the true class")
  ticks = np.arange(num_classes)
  ax.set_xticks(ticks, labels, rotation=90, fontsize=font)
  ax.set_yticks(ticks, labels, fontsize=font)
  ax.set_xlabel("predicted class")
  ax.set_ylabel("true class")
  if title:
    ax.set_title(title)
  if num_classes <= 20:
    for i in range(num_classes):
      for j in range(num_classes):
        if confusion[i, j]:
          ax.text(j, i, f"{normalised[i, j]:.0f}", ha="center", va="center", fontsize=font - 1,
                  color="white" if normalised[i, j] > 50 else "black")
  fig.tight_layout()
  fig.savefig(path, dpi=dpi)


def _move_previous_report(out_dir: Path) -> Path | None:
  existing = [name for name in (*REPORT_FILES, EMBEDDING_FILE) if (out_dir / name).exists()]
  if not existing:
    return None
  stamp = None
  try:
    created = json.loads((out_dir / "results.json").read_text())["created_at"]
    stamp = datetime.datetime.fromisoformat(created).strftime(_STAMP_FORMAT)
  except (OSError, ValueError, KeyError, TypeError):
    newest = max((out_dir / name).stat().st_mtime for name in existing)
    stamp = datetime.datetime.fromtimestamp(newest, datetime.timezone.utc).strftime(
        _STAMP_FORMAT)
  target = out_dir / "history" / stamp
  suffix = 1
  while target.exists():
    target = out_dir / "history" / f"{stamp}-{suffix}"
    suffix += 1
  target.mkdir(parents=True)
  for name in existing:
    (out_dir / name).rename(target / name)
  return target
