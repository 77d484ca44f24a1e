"""MoCo arithmetic and heads against numpy/PyTorch references."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqjax.losses import moco
from freqjax.normalize import l2_normalize
from freqjax.models import heads
from helpers import import_torch


def _unit_rows(rng, shape):
  x = rng.standard_normal(shape).astype(np.float32)
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _np_info_nce(q, k, queue, temperature):
  logits = np.concatenate([np.sum(q * k, -1, keepdims=True), q @ queue.T], -1) / temperature
  logits64 = logits.astype(np.float64)
  log_z = np.log(np.sum(np.exp(logits64 - logits64.max(-1, keepdims=True)), -1))
  log_z += logits64.max(-1)
  return np.mean(log_z - logits64[:, 0]), logits


def test_l2_normalize_matches_torch_semantics():
  x = np.array([[3.0, 4.0], [0.0, 0.0], [1e-14, 0.0]], np.float32)
  got = np.asarray(l2_normalize(jnp.asarray(x)))
  # F.normalize divides by max(norm, eps): a zero row stays zero, a tiny row is divided by eps.
  np.testing.assert_allclose(got, [[0.6, 0.8], [0.0, 0.0], [1e-2, 0.0]], rtol=1e-6)


def test_info_nce_matches_numpy_and_torch():
  rng = np.random.default_rng(0)
  q, k, queue = _unit_rows(rng, (6, 16)), _unit_rows(rng, (6, 16)), _unit_rows(rng, (32, 16))
  loss, logits = moco.info_nce(jnp.asarray(q), jnp.asarray(k), jnp.asarray(queue), 0.2)
  want_loss, want_logits = _np_info_nce(q, k, queue, 0.2)
  assert logits.shape == (6, 33)
  np.testing.assert_allclose(np.asarray(logits), want_logits, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(float(loss), want_loss, rtol=1e-5)

  torch = import_torch()
  tq, tk, tqueue = (torch.from_numpy(a) for a in (q, k, queue))
  # SkeletonCLR's code: einsum('nc,nc->n'), einsum('nc,ck->nk') with queue (D, K), CE on 0.
  t_logits = torch.cat([torch.einsum("nc,nc->n", tq, tk)[:, None],
                        torch.einsum("nc,ck->nk", tq, tqueue.T)], 1) / 0.2
  t_loss = torch.nn.functional.cross_entropy(t_logits, torch.zeros(6, dtype=torch.long))
  np.testing.assert_allclose(float(loss), t_loss.item(), rtol=1e-5)


def test_info_nce_gradient_reaches_queries_only():
  rng = np.random.default_rng(1)
  q, k, queue = (jnp.asarray(_unit_rows(rng, s)) for s in ((4, 8), (4, 8), (16, 8)))
  grads = jax.grad(lambda *a: moco.info_nce(*a)[0], argnums=(0, 1, 2))(q, k, queue)
  assert float(jnp.abs(grads[0]).max()) > 1e-3
  assert float(jnp.abs(grads[1]).max()) == 0.0
  assert float(jnp.abs(grads[2]).max()) == 0.0


def test_contrastive_accuracy():
  logits = jnp.array([[5.0, 1.0, 2.0],    # positive wins
                      [1.0, 3.0, 0.0],    # a negative wins
                      [2.0, 2.0, 0.0],    # tie with the positive: wrong (collapse)
                      [0.0, -1.0, 0.5]])  # a negative wins
  assert float(moco.contrastive_accuracy(logits)) == pytest.approx(0.25)
  assert float(moco.contrastive_accuracy(jnp.ones((4, 6)))) == 0.0
  rng = np.random.default_rng(2)
  random_logits = rng.standard_normal((50, 9)).astype(np.float32)
  want = np.mean(np.argmax(random_logits, -1) == 0)
  assert float(moco.contrastive_accuracy(jnp.asarray(random_logits))) == pytest.approx(want)


def test_momentum_update_is_leafwise_ema():
  rng = np.random.default_rng(3)
  target = {"a": rng.standard_normal((3, 4)).astype(np.float32),
            "b": [rng.standard_normal(5).astype(np.float32)]}
  online = {"a": rng.standard_normal((3, 4)).astype(np.float32),
            "b": [rng.standard_normal(5).astype(np.float32)]}
  got = jax.jit(moco.momentum_update)(target, online, 0.9)
  np.testing.assert_allclose(got["a"], 0.9 * target["a"] + 0.1 * online["a"], rtol=1e-6)
  np.testing.assert_allclose(got["b"][0], 0.9 * target["b"][0] + 0.1 * online["b"][0],
                             rtol=1e-6)
  assert got["a"].dtype == np.float32
  # m = 1 freezes the key encoder; m = 0 copies the query encoder.
  np.testing.assert_array_equal(moco.momentum_update(target, online, 1.0)["a"], target["a"])
  np.testing.assert_array_equal(moco.momentum_update(target, online, 0.0)["a"], online["a"])


def test_enqueue_wraps_around():
  size, n, dim = 8, 4, 3
  queue, pointer = jnp.zeros((size, dim)), jnp.int32(0)
  step = jax.jit(moco.enqueue)
  batches = [(i + 1 + np.arange(n)[:, None] / 10 + np.zeros(dim)).astype(np.float32)
             for i in range(3)]
  pointers = []
  for batch in batches:
    queue, pointer = step(queue, pointer, jnp.asarray(batch))
    pointers.append(int(pointer))
  assert pointers == [4, 0, 4]
  # Third write overwrote rows 0..3 (the oldest), rows 4..7 still hold the second batch.
  np.testing.assert_array_equal(np.asarray(queue), np.concatenate([batches[2], batches[1]]))
  assert pointer.dtype == jnp.int32


def test_enqueue_rejects_indivisible_queue_before_running():
  with pytest.raises(ValueError, match=r"queue size 10 .* 4 items .* fm\.text_queue_size"):
    jax.jit(moco.enqueue, static_argnums=3).lower(
        jnp.zeros((10, 3)), jnp.int32(0), jnp.zeros((4, 3)), "fm.text_queue_size")
  with pytest.raises(ValueError, match=r"moco\.queue_size"):
    moco.enqueue(jnp.zeros((4, 3)), 0, jnp.zeros((8, 3)))
  with pytest.raises(ValueError, match="same D"):
    moco.enqueue(jnp.zeros((8, 3)), 0, jnp.zeros((4, 2)))


def test_mlp_head_loads_torch_checkpoint_and_matches_its_forward():
  torch = import_torch()
  torch.manual_seed(0)
  fc = torch.nn.Sequential(torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128))
  state = {f"encoder_q.fc.{k}": v for k, v in fc.state_dict().items()}
  params = heads.mlp_head_params_from_torch(state)
  h = np.random.default_rng(4).standard_normal((5, 256)).astype(np.float32)
  got = heads.MLPHead().apply({"params": params}, jnp.asarray(h))
  with torch.no_grad():
    want = fc(torch.from_numpy(h)).numpy()
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)
  # The mapping covers exactly the parameters the module creates.
  init = heads.MLPHead().init(jax.random.key(0), jnp.zeros((1, 256)))["params"]
  assert jax.tree_util.tree_map(np.shape, init) == jax.tree_util.tree_map(np.shape, params)
  with pytest.raises(KeyError, match="encoder_k.fc.0.weight"):
    heads.mlp_head_params_from_torch(state, prefix="encoder_k.fc")


def test_flax_scheme_heads_initialise_like_pytorch_defaults():
  """`model.init="flax"`: nn.Linear's default; the reference scheme is in test_init.py."""
  h = jnp.zeros((2, 256))
  mlp = heads.MLPHead(init_scheme="flax").init(jax.random.key(0), h)["params"]
  bound = 1 / np.sqrt(256)
  for layer in ("layers_0", "layers_2"):
    for leaf in mlp[layer].values():
      assert np.abs(leaf).max() <= bound
      assert np.abs(leaf).max() > 0.9 * bound   # uniform over the whole range, not N(0, small)
  proj = heads.Projection(init_scheme="flax").init(jax.random.key(1), h)["params"]["fc"]
  assert proj["kernel"].shape == (256, 512)
  fc = heads.LinearClassifier(num_classes=60, init_scheme="flax").init(
      jax.random.key(2), h)["params"]["fc"]
  assert fc["kernel"].shape == (256, 60)
  assert np.std(fc["kernel"]) == pytest.approx(0.01, rel=0.05)
  np.testing.assert_array_equal(fc["bias"], 0.0)
