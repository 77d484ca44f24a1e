"""Label subsets and minival: class-balanced, seeded, disjoint, documented sizes."""
import numpy as np
import pytest

from freqjax.evaluation import subsets


def _labels(sizes, seed=0):
  labels = np.repeat(np.arange(len(sizes)), sizes)
  return np.random.default_rng(seed).permutation(labels)


@pytest.mark.parametrize("fraction,expected", [
    (0.1, [10, 25, 4, 1]),  # 3.7 -> 4; 0.5 -> 1 (round half up, not to even)
    (0.01, [1, 3, 1, 1]),  # 2.5 -> 3; every class keeps at least one label
    (1.0, [100, 250, 37, 5]),
])
def test_class_balanced_subset_sizes(fraction, expected):
  labels = _labels([100, 250, 37, 5])
  idx = subsets.class_balanced_subset(labels, fraction, seed=0)
  assert np.all(np.diff(idx) > 0)  # sorted, no repeats
  np.testing.assert_array_equal(np.bincount(labels[idx], minlength=4), expected)


def test_class_balanced_subset_is_seeded():
  labels = _labels([100, 250, 37, 5])
  a = subsets.class_balanced_subset(labels, 0.1, seed=3)
  np.testing.assert_array_equal(a, subsets.class_balanced_subset(labels, 0.1, seed=3))
  assert not np.array_equal(a, subsets.class_balanced_subset(labels, 0.1, seed=4))


def test_subset_of_train_is_disjoint_from_test():
  # A pooled dataset split into train and test; the subset indexes the train labels only.
  rng = np.random.default_rng(1)
  pooled = rng.integers(0, 7, size=500)
  test_ids = np.sort(rng.choice(500, size=150, replace=False))
  train_ids = np.setdiff1d(np.arange(500), test_ids)
  chosen = train_ids[subsets.class_balanced_subset(pooled[train_ids], 0.1, seed=0)]
  assert np.intersect1d(chosen, test_ids).size == 0
  np.testing.assert_array_equal(np.unique(pooled[chosen]), np.arange(7))


def test_minival_split_is_stratified_disjoint_and_complete():
  sizes = [200, 120, 60, 20, 3]
  labels = _labels(sizes, seed=2)
  train, minival = subsets.minival_split(labels, 0.05, seed=0)
  assert minival.size == 20  # round(0.05 * 403)
  assert np.intersect1d(train, minival).size == 0
  np.testing.assert_array_equal(np.sort(np.concatenate([train, minival])), np.arange(403))
  assert np.all(np.diff(train) > 0) and np.all(np.diff(minival) > 0)
  per_class = np.bincount(labels[minival], minlength=5)
  proportional = 20 * np.asarray(sizes) / 403
  assert np.all(np.abs(per_class - proportional) < 1)
  assert np.all(np.bincount(labels[train], minlength=5) >= 1)


def test_minival_split_by_count_seeded_and_keeps_a_training_sample_per_class():
  # Class 2's quota (0.6) wins the leftover sample but its only sample stays in train,
  # so minival comes out one short of the 3 asked for.
  labels = _labels([2, 2, 1])
  train, minival = subsets.minival_split(labels, 3, seed=0)
  np.testing.assert_array_equal(np.bincount(labels[minival], minlength=3), [1, 1, 0])
  np.testing.assert_array_equal(np.bincount(labels[train], minlength=3), [1, 1, 1])

  labels = _labels([50, 50, 1])
  train, minival = subsets.minival_split(labels, 10, seed=1)
  assert minival.size == 10
  again = subsets.minival_split(labels, 10, seed=1)[1]
  np.testing.assert_array_equal(minival, again)
  assert not np.array_equal(minival, subsets.minival_split(labels, 10, seed=2)[1])


def test_bad_arguments():
  labels = _labels([10, 10])
  with pytest.raises(ValueError, match="fraction must be in"):
    subsets.class_balanced_subset(labels, 1.5, seed=0)
  with pytest.raises(ValueError, match="minival fraction"):
    subsets.minival_split(labels, 1.0)
  with pytest.raises(ValueError, match="minival count"):
    subsets.minival_split(labels, 20)
  with pytest.raises(ValueError, match="integers"):
    subsets.class_balanced_subset(labels.astype(float), 0.1, seed=0)
