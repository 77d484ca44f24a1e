"""Which training samples an evaluation protocol may use: label subsets and minival.

Both functions take the `(N,)` integer labels of the *training* split and return indices
into it, sorted ascending, so a subset is disjoint from the test split by construction
(the test split is never passed in). Randomness comes only from `seed`
(`np.random.default_rng`), so a subset is reproducible from `(labels, fraction, seed)`.
"""
import math

import numpy as np


def _check_labels(labels) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.size == 0:
    raise ValueError(f"labels must be a non-empty 1-D array; got shape {labels.shape}.")
  if not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"labels must be integers; got dtype {labels.dtype}.")
  return labels


def _round_half_up(x: float) -> int:
  # Python's round() goes to even (round(0.5) == 0); a 1 % subset of 50 samples is 1.
  return int(math.floor(x + 0.5))


def class_balanced_subset(labels, fraction: float, seed: int) -> np.ndarray:
  """Indices of a class-balanced fraction of the labelled training samples.

  The semi-supervised protocol (1 % / 10 % of the labels): for every class c present in
  `labels`, with n_c samples, `max(1, round_half_up(fraction * n_c))` of them are drawn
  without replacement, so every class keeps at least one label.

  Args:
    labels: `(N,)` int class ids of the training split.
    fraction: in (0, 1]; 0.01 and 0.1 for the published protocols.
    seed: the same seed gives the same subset.

  Returns:
    `(n,)` int64 indices into `labels`, sorted ascending.
  """
  labels = _check_labels(labels)
  if not 0.0 < fraction <= 1.0:
    raise ValueError(f"fraction must be in (0, 1] (0.01 for 1 % of the labels); got {fraction}.")
  rng = np.random.default_rng(seed)
  chosen = []
  for c in np.unique(labels):
    members = np.flatnonzero(labels == c)
    count = max(1, _round_half_up(fraction * members.size))
    chosen.append(rng.choice(members, size=min(count, members.size), replace=False))
  return np.sort(np.concatenate(chosen)).astype(np.int64)


def minival_split(labels, size: float | int = 0.05, seed: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
  """Splits the training samples into (train, minival), stratified by class.

  Model selection (e.g. the linear probe's epoch) happens on minival, never on test.
  The minival size is `round_half_up(size * N)` when `size` is a float in (0, 1), or
  `size` itself when it is an int >= 1. It is shared out over the classes in proportion
  to their sizes by largest remainders (ties to the lower class id), so the total is
  exact and every class is represented as evenly as integers allow. A class never gives
  up its last training sample; if that cap binds, minival comes out smaller.

  Args:
    labels: `(N,)` int class ids of the training split.
    size: the minival fraction (float) or sample count (int).
    seed: the same seed gives the same split.

  Returns:
    `(train_idx, minival_idx)`: disjoint int64 index arrays into `labels`, each sorted,
    together covering all N samples.
  """
  labels = _check_labels(labels)
  n = labels.size
  if isinstance(size, (bool, np.bool_)):
    raise ValueError(f"size must be a fraction in (0, 1) or a count >= 1; got {size}.")
  if isinstance(size, (int, np.integer)):
    if not 1 <= size < n:
      raise ValueError(f"a minival count must be in [1, {n}) for {n} training samples; "
                       f"got {size}.")
    total = int(size)
  else:
    if not 0.0 < size < 1.0:
      raise ValueError(f"a minival fraction must be in (0, 1); got {size}.")
    total = _round_half_up(size * n)
  classes, counts = np.unique(labels, return_counts=True)
  quota = total * counts / n
  per_class = np.floor(quota).astype(np.int64)
  leftover = total - per_class.sum()
  by_remainder = np.lexsort((classes, -(quota - per_class)))
  per_class[by_remainder[:leftover]] += 1
  per_class = np.minimum(per_class, counts - 1)

  rng = np.random.default_rng(seed)
  minival = []
  for c, k in zip(classes, per_class):
    members = np.flatnonzero(labels == c)
    minival.append(rng.choice(members, size=k, replace=False))
  minival_idx = np.sort(np.concatenate(minival)).astype(np.int64)
  is_minival = np.zeros(n, dtype=bool)
  is_minival[minival_idx] = True
  return np.flatnonzero(~is_minival).astype(np.int64), minival_idx
