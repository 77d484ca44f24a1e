"""Classification metrics on scores (logits or votes): numpy, one definition of top-k.

Top-k is defined by the position of the true class in a *stable* descending sort of the
scores: classes scoring higher than the true class come first, and among equal scores the
lower class index comes first. So top-1 is exactly `argmax == label` (numpy's and XLA's
argmax both return the first maximum), exact ties are never counted in the sample's
favour beyond that rule, and the same numbers come out of numpy and of jitted code
(`true_class_rank` works on numpy and jax arrays alike).

Accuracies are in percent.
"""
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def check_labels(labels: Any, num_samples: int, num_classes: int, what: str) -> None:
  """Raises ValueError unless `labels` is `(num_samples,)` ints in [0, num_classes)."""
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.shape[0] != num_samples:
    raise ValueError(f"labels must be ({num_samples},) to match {what}; got shape "
                     f"{labels.shape}.")
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels for {what} must be integers; got dtype {labels.dtype}.")
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f"labels for {what} must lie in [0, {num_classes}) ({num_classes} "
                     f"classes); got range [{labels.min()}, {labels.max()}].")


def check_scores_and_labels(scores: Any, labels: Any, what: str = "scores") -> None:
  """Raises ValueError unless `scores` is finite `(N, C)` and `labels` `(N,)` ints in [0, C)."""
  scores = np.asarray(scores)
  if scores.ndim != 2:
    raise ValueError(f"{what} must be (N, num_classes); got shape {scores.shape}.")
  check_labels(labels, scores.shape[0], scores.shape[1], f"{what} {scores.shape}")
  if not np.all(np.isfinite(scores)):
    raise ValueError(f"{what} contain NaN or inf ({np.sum(~np.isfinite(scores))} entries).")


def true_class_rank(scores, labels, xp=np):
  """0-based position of each sample's true class in a stable descending sort.

  Args:
    scores: `(N, C)` scores, higher is more likely.
    labels: `(N,)` int class ids.
    xp: the array module (`numpy` or `jax.numpy`); the function is jittable with jnp.

  Returns:
    `(N,)` int: the number of classes ranked before the true class.
  """
  true_score = xp.take_along_axis(scores, labels[:, None], axis=1)
  class_ids = xp.arange(scores.shape[1])[None, :]
  ahead = (scores > true_score) | ((scores == true_score) & (class_ids < labels[:, None]))
  return ahead.sum(axis=1)


def topk_accuracy(scores: Any, labels: Any, k: int) -> float:
  """Top-k accuracy in percent of `(N, C)` scores against `(N,)` labels."""
  check_scores_and_labels(scores, labels)
  ranks = true_class_rank(np.asarray(scores), np.asarray(labels))
  return 100.0 * float(np.mean(ranks < k))


def topk_accuracies(scores: Any, labels: Any, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
  """`{"top1": ..., "top5": ...}` in percent."""
  check_scores_and_labels(scores, labels)
  ranks = true_class_rank(np.asarray(scores), np.asarray(labels))
  return {f"top{k}": 100.0 * float(np.mean(ranks < k)) for k in ks}


def confusion_matrix(labels: Any, predictions: Any, num_classes: int) -> np.ndarray:
  """`(C, C)` int64 counts; row = true class, column = predicted class."""
  labels = np.asarray(labels, dtype=np.int64)
  predictions = np.asarray(predictions, dtype=np.int64)
  if labels.shape != predictions.shape or labels.ndim != 1:
    raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} must be "
                     "equal-length 1-D arrays.")
  for name, values in (("labels", labels), ("predictions", predictions)):
    if values.size and (values.min() < 0 or values.max() >= num_classes):
      raise ValueError(f"{name} must lie in [0, {num_classes}); got range "
                       f"[{values.min()}, {values.max()}].")
  counts = np.bincount(labels * num_classes + predictions, minlength=num_classes**2)
  return counts.reshape(num_classes, num_classes)


def per_class_accuracy(confusion: np.ndarray) -> np.ndarray:
  """`(C,)` recall of each class in percent; NaN for a class with no samples."""
  confusion = np.asarray(confusion)
  support = confusion.sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(support > 0, 100.0 * np.diag(confusion) / support, np.nan)


def most_confused_pairs(confusion: np.ndarray, class_names: Sequence[str] | None = None,
                        n: int = 10) -> list[dict[str, Any]]:
  """The `n` class pairs mixed up most often, counted symmetrically.

  A pair `{a, b}` (a < b) scores `count(a→b) + count(b→a)`, where `count(i→j)` is the
  number of samples of true class i predicted as j. Symmetric, because "drinking vs
  eating" is one confusion whichever way it goes; both directions are kept in the
  result. Pairs never confused are left out; ties are ordered by (a, b).

  Returns:
    A list of dicts `{"a", "b", "name_a", "name_b", "a_to_b", "b_to_a", "total"}`,
    most confused first.
  """
  confusion = np.asarray(confusion)
  num_classes = confusion.shape[0]
  names = resolve_class_names(class_names, num_classes)
  a, b = np.triu_indices(num_classes, k=1)
  totals = confusion[a, b] + confusion[b, a]
  order = np.lexsort((b, a, -totals))  # last key is primary: total descending
  pairs = []
  for i in order[:n]:
    if totals[i] == 0:
      break
    pairs.append({"a": int(a[i]), "b": int(b[i]), "name_a": names[a[i]], "name_b": names[b[i]],
                  "a_to_b": int(confusion[a[i], b[i]]), "b_to_a": int(confusion[b[i], a[i]]),
                  "total": int(totals[i])})
  return pairs


def format_confused_pairs(pairs: Sequence[Mapping[str, Any]]) -> str:
  """One line per pair: `total  name_a <-> name_b  (a→b, b→a)`."""
  if not pairs:
    return "no confused pairs (every test sample is classified correctly)\n"
  lines = [f"{'total':>6}  pair  (a->b, b->a)"]
  for p in pairs:
    lines.append(f"{p['total']:>6}  {p['name_a']} <-> {p['name_b']}  "
                 f"({p['a_to_b']}, {p['b_to_a']})")
  return "\n".join(lines) + "\n"


def resolve_class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
  """The given names as strings, or `class 0`, `class 1`, ... when there are none."""
  if class_names is None:
    return [f"class {i}" for i in range(num_classes)]
  if len(class_names) != num_classes:
    raise ValueError(f"class_names has {len(class_names)} entries but there are "
                     f"{num_classes} classes.")
  return [str(name) for name in class_names]
