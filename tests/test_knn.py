"""Weighted cosine kNN against a hand-worked case and an independent numpy reference."""
import numpy as np
import pytest

from freqjax.evaluation import knn


def _reference_scores(train_x, train_y, test_x, num_classes, k, temperature):
  """InstDisc's kNN vote, written directly: Σ exp(cos / τ) over the k nearest per class."""
  def normalise(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)
  sims = normalise(test_x.astype(np.float64)) @ normalise(train_x.astype(np.float64)).T
  scores = np.zeros((test_x.shape[0], num_classes))
  for i, row in enumerate(sims):
    for j in np.argsort(-row, kind="stable")[:k]:
      scores[i, train_y[j]] += np.exp(row[j] / temperature)
  return scores


def test_hand_built_case():
  # Training points on the unit circle: class 0 near 0°, class 1 near 90°, class 2 at 180°.
  angles = np.deg2rad([0, 10, 80, 90, 100, 180])
  train_x = np.stack([np.cos(angles), np.sin(angles)], 1) * [[1], [2], [3], [1], [5], [1]]
  train_y = np.array([0, 0, 1, 1, 1, 2])
  test_angles = np.deg2rad([5, 60, 95, 170])
  test_x = np.stack([np.cos(test_angles), np.sin(test_angles)], 1)
  # k = 2: 5° -> {0°, 10°}: class 0. 60° -> {80°, 90°}: class 1. 95° -> {90°, 100°}: 1.
  # 170° -> {180° (class 2, cos 10°), 100° (class 1, cos 70°)}: class 2 wins on weight.
  scores = knn.knn_scores(train_x, train_y, test_x, num_classes=3, k=2, temperature=0.1)
  np.testing.assert_array_equal(np.argmax(scores, 1), [0, 1, 1, 2])
  np.testing.assert_allclose(scores[0], [1.0, 0.0, 0.0], atol=1e-6)
  w2, w1 = np.exp(np.cos(np.deg2rad(10)) / 0.1), np.exp(np.cos(np.deg2rad(70)) / 0.1)
  np.testing.assert_allclose(scores[3], [0.0, w1 / (w1 + w2), w2 / (w1 + w2)], rtol=1e-5)


@pytest.mark.parametrize("k,temperature", [(1, 0.07), (7, 0.1), (40, 0.5)])
def test_matches_numpy_reference_with_uneven_chunks(k, temperature):
  rng = np.random.default_rng(k)
  train_x, test_x = rng.normal(size=(60, 12)), rng.normal(size=(37, 12))
  train_y = rng.integers(0, 6, size=60)
  scores = knn.knn_scores(train_x, train_y, test_x, num_classes=6, k=k,
                          temperature=temperature, chunk_size=8)  # 37 = 4 * 8 + 5
  expected = _reference_scores(train_x, train_y, test_x, 6, k, temperature)
  assert scores.shape == (37, 6)
  np.testing.assert_allclose(scores, expected / expected.sum(1, keepdims=True), atol=1e-5)
  # Only the direction of a feature matters.
  rescaled = knn.knn_scores(train_x * rng.uniform(0.1, 10, (60, 1)), train_y,
                            test_x * rng.uniform(0.1, 10, (37, 1)), num_classes=6, k=k,
                            temperature=temperature, chunk_size=8)
  np.testing.assert_allclose(rescaled, scores, atol=1e-5)


def test_clusters_are_classified_perfectly_and_accuracies_agree_with_numpy():
  rng = np.random.default_rng(0)
  centres = rng.normal(size=(5, 32)) * 3
  train_y, test_y = np.repeat(np.arange(5), 30), np.repeat(np.arange(5), 9)
  train_x = centres[train_y] + rng.normal(size=(150, 32))
  test_x = centres[test_y] + rng.normal(size=(45, 32))
  result = knn.knn_evaluate(train_x, train_y, test_x, test_y, num_classes=5, k=20,
                            temperature=0.1, chunk_size=16)
  assert result["test_top1"] == 100.0 and result["test_top5"] == 100.0
  # Shuffled labels: top-1 from the scores equals the numpy argmax accuracy.
  noisy = rng.permutation(test_y)
  result = knn.knn_evaluate(train_x, train_y, test_x, noisy, num_classes=5, k=20)
  assert result["test_top1"] == pytest.approx(
      100 * np.mean(np.argmax(result["test_scores"], 1) == noisy))
  assert result["num_test"] == 45 and result["num_train"] == 150


def test_bad_arguments():
  x, y = np.ones((4, 3)), np.array([0, 1, 0, 1])
  with pytest.raises(ValueError, match=r"k must be in \[1, N_train=4\]"):
    knn.knn_scores(x, y, x, num_classes=2, k=5)
  with pytest.raises(ValueError, match="D=3 but test features have D=2"):
    knn.knn_scores(x, y, np.ones((2, 2)), num_classes=2, k=2)


def _ranked_case(num_samples=10, seed=1):
  """Eight classes; each test point's coordinates rank its true class at a chosen place.

  Returns `(test_x (N, 8), test_y (N,), ranks (N,))`: sample i has its largest coordinate
  on some class, the next on another, ..., and its label at 0-based place `ranks[i]`, the
  levels far apart (0.15) so the order is unambiguous.
  """
  rng = np.random.default_rng(seed)
  levels = np.array([1.0, 0.85, 0.7, 0.55, 0.4, 0.25, 0.1, 0.0])
  ranks = np.array([0, 0, 1, 2, 3, 4, 5, 6, 7, 0])[:num_samples]
  test_y = rng.integers(0, 8, size=num_samples)
  test_x = np.zeros((num_samples, 8))
  for i, (label, rank) in enumerate(zip(test_y, ranks)):
    others = rng.permutation([c for c in range(8) if c != label])
    order = np.insert(others, rank, label)  # classes from the largest coordinate down
    test_x[i, order] = levels
  return test_x, test_y, ranks


def test_top5_of_eight_classes_counted_by_hand():
  """One training point per class on its axis, k = all 8: every class votes exp(cos / τ),
  so the class ranking of a test point is the order of its coordinates. The labels sit at
  places 0,0,1,2,3,4,5,6,7,0: top-1 3/10, top-5 7/10. (Equal votes would rank the classes
  by index instead: 1/10 and 6/10 for these labels.)"""
  test_x, test_y, _ = _ranked_case()
  result = knn.knn_evaluate(np.eye(8), np.arange(8), test_x, test_y, num_classes=8, k=8,
                            temperature=0.1)
  assert result["test_top1"] == pytest.approx(30.0)
  assert result["test_top5"] == pytest.approx(70.0)
