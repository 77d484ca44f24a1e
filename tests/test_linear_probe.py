"""Linear probe: separable features are learnt, batches cover every sample once, the
padded last batch is averaged over real samples only, and minival picks the epoch."""
import jax
import numpy as np
import pytest

from freqjax import optim
from freqjax.evaluation import linear_probe


def _clusters(rng, num_classes, per_class, dim, spread):
  means = 4.0 * np.eye(num_classes, dim)
  labels = np.repeat(np.arange(num_classes), per_class)
  features = means[labels] + spread * rng.normal(size=(labels.size, dim))
  order = rng.permutation(labels.size)
  return features[order].astype(np.float32), labels[order]


def test_separable_features_reach_100_percent_with_uneven_batches():
  rng = np.random.default_rng(0)
  x, y = _clusters(rng, num_classes=4, per_class=51, dim=16, spread=0.3)  # N = 204
  x_test, y_test = _clusters(rng, num_classes=4, per_class=20, dim=16, spread=0.3)
  result = linear_probe.train_linear_probe(
      x[:203], y[:203], x_test, y_test, num_classes=4, epochs=10, batch_size=32,
      decay_epochs=(8,))
  assert result["test_top1"] == 100.0
  assert result["test_top5"] == 100.0
  # 203 = 6 * 32 + 11: seven optimizer steps per epoch, the last on 11 real samples.
  assert result["steps_per_epoch"] == 7
  assert result["num_steps"] == 70
  assert result["curve"]["lr"] == [3.0] * 8 + [pytest.approx(0.3)] * 2
  assert result["test_logits"].shape == (80, 4)
  np.testing.assert_array_equal(np.argmax(result["test_logits"], 1), y_test)
  assert result["minival_epoch"] is None


def test_epoch_batches_hold_every_sample_exactly_once():
  indices, mask = linear_probe.epoch_batches(jax.random.PRNGKey(3), 70, 32)
  indices, mask = np.asarray(indices), np.asarray(mask)
  assert indices.shape == mask.shape == (3, 32)
  real = indices[mask == 1.0]
  np.testing.assert_array_equal(np.sort(real), np.arange(70))
  assert mask.sum() == 70 and np.all(mask[2, 6:] == 0.0) and np.all(mask[:2] == 1.0)
  other, _ = linear_probe.epoch_batches(jax.random.PRNGKey(4), 70, 32)
  assert not np.array_equal(indices, np.asarray(other))  # the shuffle depends on the key


def _softmax(z):
  z = z - z.max(axis=1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(axis=1, keepdims=True)


def test_padded_batch_is_averaged_over_real_samples_only():
  # N = 50 < batch 64: one padded step per epoch, whose gradient must be the plain mean
  # over the 50 samples (padding with copies of sample 0, or dividing by 64, would differ).
  rng = np.random.default_rng(1)
  x, y = _clusters(rng, num_classes=3, per_class=17, dim=8, spread=1.0)
  x, y = x[:50], y[:50]
  common = dict(num_classes=3, batch_size=64, momentum=0.9, seed=5, decay_epochs=())
  init = linear_probe.train_linear_probe(x, y, x, y, epochs=1, learning_rate=0.0, **common)
  result = linear_probe.train_linear_probe(x, y, x, y, epochs=3, learning_rate=0.5, **common)

  w = np.asarray(init["params"]["params"]["kernel"], np.float64)
  b = np.asarray(init["params"]["params"]["bias"], np.float64)
  vw, vb = np.zeros_like(w), np.zeros_like(b)
  onehot = np.eye(3)[y]
  for _ in range(3):  # PyTorch SGD: v = 0.9 v + g; p -= lr v
    delta = (_softmax(x @ w + b) - onehot) / 50
    vw, vb = 0.9 * vw + x.T @ delta, 0.9 * vb + delta.sum(0)
    w, b = w - 0.5 * vw, b - 0.5 * vb
  np.testing.assert_allclose(result["params"]["params"]["kernel"], w, rtol=1e-4, atol=1e-5)
  np.testing.assert_allclose(result["params"]["params"]["bias"], b, rtol=1e-4, atol=1e-5)
  assert result["num_steps"] == 3
  # The reported train loss of an epoch is the mean over its 50 samples.
  logits0 = x @ np.asarray(init["params"]["params"]["kernel"]) + init["params"]["params"]["bias"]
  first_loss = -np.mean(np.log(_softmax(logits0.astype(np.float64))[np.arange(50), y]))
  assert result["curve"]["train_loss"][0] == pytest.approx(first_loss, rel=1e-4)


def test_minival_selects_the_epoch_with_best_minival_accuracy():
  rng = np.random.default_rng(2)
  # Overlapping classes and a small minival, so the accuracy moves between epochs.
  x, y = _clusters(rng, num_classes=5, per_class=40, dim=10, spread=2.5)
  xv, yv = _clusters(rng, num_classes=5, per_class=6, dim=10, spread=2.5)
  xt, yt = _clusters(rng, num_classes=5, per_class=20, dim=10, spread=2.5)
  result = linear_probe.train_linear_probe(
      x, y, xt, yt, num_classes=5, minival_features=xv, minival_labels=yv, epochs=12,
      batch_size=16, learning_rate=1.0, decay_epochs=(9,), seed=1)
  curve = result["curve"]
  assert len(set(curve["minival_top1"])) > 1, "the test needs a varying minival curve"
  expected = int(np.argmax(curve["minival_top1"])) + 1  # first epoch with the maximum
  assert result["minival_epoch"] == expected
  assert result["minival_top1_at_minival_epoch"] == max(curve["minival_top1"])
  assert result["test_top1_at_minival_epoch"] == curve["test_top1"][expected - 1]
  assert result["best_test_top1_over_epochs"] == max(curve["test_top1"])
  assert result["test_top1"] == curve["test_top1"][-1]
  # The returned minival params are the ones of that epoch: they reproduce its accuracy.
  p = result["minival_params"]["params"]
  acc = 100.0 * np.mean(np.argmax(xv @ p["kernel"] + p["bias"], 1) == yv)
  assert acc == pytest.approx(result["minival_top1_at_minival_epoch"])
  assert result["num_minival"] == 30


def test_l2_normalize_makes_the_probe_invariant_to_feature_scale():
  rng = np.random.default_rng(3)
  x, y = _clusters(rng, num_classes=3, per_class=20, dim=6, spread=1.0)
  scale = rng.uniform(0.1, 10.0, size=(x.shape[0], 1)).astype(np.float32)
  kwargs = dict(num_classes=3, epochs=3, batch_size=16, l2_normalize=True)
  a = linear_probe.train_linear_probe(x, y, x, y, **kwargs)
  b = linear_probe.train_linear_probe(x * scale, y, x * scale, y, **kwargs)
  np.testing.assert_allclose(a["test_logits"], b["test_logits"], rtol=1e-4, atol=1e-5)


def test_standardize_makes_the_probe_invariant_to_per_dimension_scale_and_shift():
  """Standardised with the TRAIN split's statistics: rescaling and shifting each feature
  dimension (both splits alike) leaves the probe unchanged; a constant dimension is zeroed."""
  rng = np.random.default_rng(4)
  x, y = _clusters(rng, num_classes=3, per_class=20, dim=6, spread=1.0)
  x[:, 5] = 7.0  # constant on train
  test = x + rng.normal(0, 0.1, size=x.shape).astype(np.float32)
  scale = rng.uniform(0.01, 100.0, size=(1, 6)).astype(np.float32)
  shift = rng.normal(0, 50.0, size=(1, 6)).astype(np.float32)
  kwargs = dict(num_classes=3, epochs=3, batch_size=16, standardize=True)
  a = linear_probe.train_linear_probe(x, y, test, y, **kwargs)
  b = linear_probe.train_linear_probe(x * scale + shift, y, test * scale + shift, y, **kwargs)
  np.testing.assert_allclose(a["test_logits"], b["test_logits"], rtol=1e-3, atol=1e-3)
  mean, inverse_std = linear_probe.standardization(x)
  np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5)
  np.testing.assert_allclose(inverse_std[:5], 1 / x[:, :5].std(0), rtol=1e-4)
  assert inverse_std[5] == 0.0
  with pytest.raises(ValueError, match="alternatives"):
    linear_probe.train_linear_probe(x, y, x, y, num_classes=3, standardize=True,
                                    l2_normalize=True)


def test_learning_rate_decays_from_epoch_81_as_in_aimclr():
  # AimCLR: lr = base * 0.1 ** (epoch > 80) with 1-based epochs; ours are 0-based.
  lrs = [optim.epoch_learning_rate(e, 3.0, (80,), 0.1) for e in range(100)]
  assert lrs[:80] == [3.0] * 80
  assert lrs[80:] == [pytest.approx(0.3)] * 20
  assert optim.epoch_learning_rate(5, 1.0, (2, 4), 0.5) == 0.25


def test_bad_inputs_give_one_clear_error():
  x = np.zeros((10, 4), np.float32)
  y = np.zeros(10, np.int64)
  with pytest.raises(ValueError, match="test_features have D=5"):
    linear_probe.train_linear_probe(x, y, np.zeros((3, 5)), y[:3], num_classes=2, epochs=1)
  with pytest.raises(ValueError, match=r"labels for train_features must lie in \[0, 2\)"):
    linear_probe.train_linear_probe(x, y + 2, x, y, num_classes=2, epochs=1)
  with pytest.raises(ValueError, match="both minival"):
    linear_probe.train_linear_probe(x, y, x, y, num_classes=2, epochs=1, minival_features=x)
  with pytest.raises(FloatingPointError, match="diverged"):
    linear_probe.train_linear_probe(x + 1e30, y, x, y, num_classes=2, epochs=3)


def test_standardize_equals_a_probe_on_numpy_standardised_features():
  rng = np.random.default_rng(4)
  x, y = _clusters(rng, num_classes=3, per_class=20, dim=6, spread=1.0)
  x_test, y_test = _clusters(rng, num_classes=3, per_class=7, dim=6, spread=1.0)
  # Very different scales and offsets per dimension, and one dimension constant on train.
  x = x * np.array([100.0, 0.01, 1.0, 5.0, 3.0, 1.0], np.float32) + 7.0
  x_test = x_test * np.array([100.0, 0.01, 1.0, 5.0, 3.0, 1.0], np.float32) + 7.0
  x[:, 5], x_test[:, 5] = 2.0, rng.normal(size=len(x_test))
  mean, inverse_std = linear_probe.standardization(x)
  reference_mean = x.astype(np.float64).mean(0)
  reference_std = x.astype(np.float64).std(0)
  np.testing.assert_allclose(mean, reference_mean, rtol=1e-6)
  np.testing.assert_allclose(inverse_std[:5], 1.0 / reference_std[:5], rtol=1e-5)
  assert inverse_std[5] == 0.0  # constant on train: zeroed, test deviations included

  kwargs = dict(num_classes=3, epochs=3, batch_size=16, seed=2)
  ours = linear_probe.train_linear_probe(x, y, x_test, y_test, standardize=True, **kwargs)
  scaled = [((a - reference_mean) / np.where(reference_std > 0, reference_std, np.inf))
            .astype(np.float32) for a in (x, x_test)]
  reference = linear_probe.train_linear_probe(*scaled[:1], y, scaled[1], y_test, **kwargs)
  np.testing.assert_allclose(ours["test_logits"], reference["test_logits"], rtol=1e-4,
                             atol=1e-5)
  # Test features are standardised with the TRAIN statistics: shifting only the test
  # split moves its logits (re-standardising test on itself would undo the shift).
  shifted = linear_probe.train_linear_probe(x, y, x_test + 3.0, y_test, standardize=True,
                                            **kwargs)
  assert not np.allclose(shifted["test_logits"], ours["test_logits"], atol=1e-3)


def test_standardize_makes_the_probe_invariant_to_per_dimension_affine_maps():
  rng = np.random.default_rng(5)
  x, y = _clusters(rng, num_classes=3, per_class=20, dim=6, spread=1.0)
  scale = rng.uniform(0.01, 100.0, size=6).astype(np.float32)
  shift = rng.normal(0.0, 50.0, size=6).astype(np.float32)
  kwargs = dict(num_classes=3, epochs=3, batch_size=16, standardize=True)
  a = linear_probe.train_linear_probe(x, y, x, y, **kwargs)
  b = linear_probe.train_linear_probe(x * scale + shift, y, x * scale + shift, y, **kwargs)
  np.testing.assert_allclose(a["test_logits"], b["test_logits"], rtol=1e-3, atol=1e-3)
  # The recipe's probe is not: the same map changes what it learns.
  plain = dict(kwargs, standardize=False, learning_rate=0.01)
  c = linear_probe.train_linear_probe(x, y, x, y, **plain)
  d = linear_probe.train_linear_probe(x * scale + shift, y, x * scale + shift, y, **plain)
  assert not np.allclose(np.argmax(c["test_logits"], 1), np.argmax(d["test_logits"], 1))
  with pytest.raises(ValueError, match="l2_normalize and standardize"):
    linear_probe.train_linear_probe(x, y, x, y, num_classes=3, epochs=1, l2_normalize=True,
                                    standardize=True)


def test_top1_and_top5_of_eight_classes_counted_by_hand():
  """Trained on the 8 class axes (4·e_c), the probe's logits for a test point rank the
  classes by its coordinates (full-batch steps on balanced classes grow each class's own
  weight alike, and lower the others alike). Test labels placed at 0,0,1,2,3,4,5,6,7,0: top-1 3/10, top-5 7/10."""
  rng = np.random.default_rng(6)
  train_y = np.repeat(np.arange(8), 16)
  train_x = (4.0 * np.eye(8)[train_y]).astype(np.float32)
  # The same construction as test_knn's ranked case (tests do not import each other).
  levels = np.array([1.0, 0.85, 0.7, 0.55, 0.4, 0.25, 0.1, 0.0])
  ranks = [0, 0, 1, 2, 3, 4, 5, 6, 7, 0]
  test_y = rng.integers(0, 8, size=len(ranks))
  test_x = np.zeros((len(ranks), 8), np.float32)
  for i, (label, rank) in enumerate(zip(test_y, ranks)):
    order = np.insert(rng.permutation([c for c in range(8) if c != label]), rank, label)
    test_x[i, order] = levels
  # One batch of all samples: every step sees each class equally often.
  result = linear_probe.train_linear_probe(train_x, train_y, test_x, test_y, num_classes=8,
                                           epochs=5, batch_size=128, decay_epochs=())
  assert result["test_top1"] == pytest.approx(30.0)
  assert result["test_top5"] == pytest.approx(70.0)
  assert result["curve"]["test_top5"][-1] == pytest.approx(70.0)
