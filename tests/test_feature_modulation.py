"""Feature Modulation KL against numpy and PyTorch references."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqjax.losses import feature_modulation as fm
from helpers import import_torch


def _unit_rows(rng, shape):
  x = rng.standard_normal(shape)
  return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def _np_log_softmax(x):
  x = np.asarray(x, np.float64)
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _np_kl_batchmean(student, teacher):
  log_t, log_s = _np_log_softmax(teacher), _np_log_softmax(student)
  return np.mean(np.sum(np.exp(log_t) * (log_t - log_s), -1))


def _np_fm_loss(z_q, z_t, queue, n1, n2, tau_s, tau_t):
  candidates = np.concatenate([z_t, queue]).astype(np.float64)
  l_b = (z_q + n1) @ candidates.T
  l_a = (z_t + n2) @ candidates.T
  return _np_kl_batchmean(l_b / tau_s, l_a / tau_t)


def test_kl_div_batchmean_matches_numpy_and_torch():
  rng = np.random.default_rng(0)
  student = rng.standard_normal((5, 12)).astype(np.float32) * 3
  teacher = rng.standard_normal((5, 12)).astype(np.float32) * 3
  got = float(fm.kl_div_batchmean(jnp.asarray(student), jnp.asarray(teacher)))
  assert got == pytest.approx(_np_kl_batchmean(student, teacher), rel=1e-5)
  torch = import_torch()
  f = torch.nn.functional
  want = f.kl_div(f.log_softmax(torch.from_numpy(student), -1),
                  f.softmax(torch.from_numpy(teacher), -1), reduction="batchmean")
  assert got == pytest.approx(want.item(), rel=1e-5)


def test_kl_div_batchmean_is_zero_on_equal_inputs_and_finite_when_peaked():
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.standard_normal((4, 7)).astype(np.float32))
  assert abs(float(fm.kl_div_batchmean(x, x))) < 1e-6
  # A teacher at τ_t = 0.05 over cosines ±1 has logits ±20; push far beyond (softmax underflows).
  peaked = x * 2000.0
  value = fm.kl_div_batchmean(x, peaked)
  assert np.isfinite(float(value))
  assert float(value) == pytest.approx(_np_kl_batchmean(np.asarray(x), np.asarray(peaked)),
                                       rel=1e-4)


def test_fm_loss_without_noise_matches_numpy():
  rng = np.random.default_rng(2)
  z_q, z_t, queue = _unit_rows(rng, (6, 32)), _unit_rows(rng, (6, 32)), _unit_rows(rng, (10, 32))
  got = fm.feature_modulation_loss(jnp.asarray(z_q), jnp.asarray(z_t), jnp.asarray(queue),
                                   jax.random.key(0), tau_s=0.1, tau_t=0.05, noise_std=0.0)
  want = _np_fm_loss(z_q, z_t, queue, 0.0, 0.0, 0.1, 0.05)
  assert float(got) == pytest.approx(want, rel=1e-4)
  # Student equal to teacher at equal temperatures: nothing to learn.
  same = fm.feature_modulation_loss(jnp.asarray(z_t), jnp.asarray(z_t), jnp.asarray(queue),
                                    jax.random.key(0), tau_s=0.07, tau_t=0.07, noise_std=0.0)
  assert abs(float(same)) < 1e-5


def test_fm_loss_with_noise_matches_numpy_with_the_same_noise():
  rng = np.random.default_rng(3)
  z_q, z_t, queue = _unit_rows(rng, (6, 32)), _unit_rows(rng, (6, 32)), _unit_rows(rng, (10, 32))
  key, sigma = jax.random.key(7), 0.05
  got = jax.jit(fm.feature_modulation_loss)(jnp.asarray(z_q), jnp.asarray(z_t),
                                            jnp.asarray(queue), key, 0.1, 0.05, sigma)
  # The documented draw: split the key (student, teacher), row i from fold_in(half, i).
  k1, k2 = jax.random.split(key)
  n1, n2 = (sigma * np.stack([np.asarray(jax.random.normal(jax.random.fold_in(half, i), (32,)),
                                         np.float64) for i in range(6)]) for half in (k1, k2))
  assert float(got) == pytest.approx(_np_fm_loss(z_q, z_t, queue, n1, n2, 0.1, 0.05), rel=1e-4)
  noiseless = _np_fm_loss(z_q, z_t, queue, 0.0, 0.0, 0.1, 0.05)
  assert abs(float(got) - noiseless) > 1e-3   # the noise is really there


def test_fm_noise_statistics():
  rng = np.random.default_rng(4)
  batch, dim, sigma = 64, 16, 0.3
  z_q, z_t = _unit_rows(rng, (batch, dim)), _unit_rows(rng, (batch, dim))
  queue = _unit_rows(rng, (64, dim))
  l_b, l_a = fm.feature_modulation_logits(jnp.asarray(z_q), jnp.asarray(z_t),
                                          jnp.asarray(queue), jax.random.key(11), sigma)
  candidates = np.concatenate([z_t, queue]).astype(np.float64)
  # S (128, 16) has full column rank, so the noise is recoverable from the logits.
  n1 = np.linalg.lstsq(candidates, (np.asarray(l_b, np.float64) - z_q @ candidates.T).T,
                       rcond=None)[0].T
  n2 = np.linalg.lstsq(candidates, (np.asarray(l_a, np.float64) - z_t @ candidates.T).T,
                       rcond=None)[0].T
  for noise in (n1, n2):
    assert abs(noise.mean()) < 4 * sigma / np.sqrt(noise.size)
    assert noise.std() == pytest.approx(sigma, rel=0.1)
  assert abs(np.corrcoef(n1.ravel(), n2.ravel())[0, 1]) < 0.15   # independent draws
  l_b2, _ = fm.feature_modulation_logits(jnp.asarray(z_q), jnp.asarray(z_t), jnp.asarray(queue),
                                         jax.random.key(12), sigma)
  assert not np.allclose(np.asarray(l_b), np.asarray(l_b2))   # the key drives the noise


def test_fm_gradient_reaches_student_only_and_matches_analytic():
  rng = np.random.default_rng(5)
  z_q, z_t, queue = _unit_rows(rng, (4, 16)), _unit_rows(rng, (4, 16)), _unit_rows(rng, (8, 16))
  tau_s, tau_t = 0.1, 0.05
  loss = lambda a, b, c: fm.feature_modulation_loss(a, b, c, jax.random.key(0), tau_s, tau_t,
                                                    noise_std=0.01)
  g_q, g_t, g_queue = jax.grad(loss, argnums=(0, 1, 2))(*map(jnp.asarray, (z_q, z_t, queue)))
  assert float(jnp.abs(g_t).max()) == 0.0
  assert float(jnp.abs(g_queue).max()) == 0.0
  # Without noise: d/dz_q of batchmean KL = (softmax(l_b/τ_s) − softmax(l_a/τ_t)) S / (τ_s B).
  g_q = jax.grad(fm.feature_modulation_loss)(jnp.asarray(z_q), jnp.asarray(z_t),
                                             jnp.asarray(queue), jax.random.key(0), tau_s, tau_t,
                                             0.0)
  candidates = np.concatenate([z_t, queue]).astype(np.float64)
  p_s = np.exp(_np_log_softmax(z_q @ candidates.T / tau_s))
  p_t = np.exp(_np_log_softmax(z_t @ candidates.T / tau_t))
  want = (p_s - p_t) @ candidates / (tau_s * len(z_q))
  np.testing.assert_allclose(np.asarray(g_q), want, rtol=1e-4, atol=1e-6)


def test_sharded_batch_gives_the_single_device_loss():
  """The data-parallel recipe of the docstring, with vmap standing in for the device axis."""
  rng = np.random.default_rng(6)
  devices, local, dim = 4, 3, 16
  z_q, z_t = _unit_rows(rng, (devices * local, dim)), _unit_rows(rng, (devices * local, dim))
  queue = jnp.asarray(_unit_rows(rng, (8, dim)))
  key = jax.random.key(5)
  whole = fm.feature_modulation_loss(jnp.asarray(z_q), jnp.asarray(z_t), queue, key, 0.1, 0.05,
                                     0.1)

  def per_device(z_q, z_t):
    row_ids = jax.lax.axis_index("data") * local + jnp.arange(local)
    texts = jax.lax.all_gather(z_t, "data", tiled=True)
    loss = fm.feature_modulation_loss(z_q, z_t, queue, key, 0.1, 0.05, 0.1,
                                      batch_texts=texts, row_ids=row_ids)
    return jax.lax.pmean(loss, "data")

  shards = [jnp.asarray(a.reshape(devices, local, dim)) for a in (z_q, z_t)]
  sharded = jax.jit(jax.vmap(per_device, axis_name="data"))(*shards)
  np.testing.assert_allclose(np.asarray(sharded), float(whole), rtol=1e-5)
  # Without the global candidates the loss differs: the test would see a wrong recipe.
  naive = jax.jit(jax.vmap(
      lambda a, b: fm.feature_modulation_loss(a, b, queue, key, 0.1, 0.05, 0.1)))(*shards)
  assert abs(float(naive.mean()) - float(whole)) > 1e-3
