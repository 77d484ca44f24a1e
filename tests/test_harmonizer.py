"""Modality Harmonizer against a numpy cross-attention reference, and its padding behaviour."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqjax.models.harmonizer import ModalityHarmonizer

N, FRAMES, CHANNELS, WORDS, WIDTH = 3, 5, 6, 7, 12


def _inputs(seed=0):
  rng = np.random.default_rng(seed)
  frames = rng.standard_normal((N, FRAMES, CHANNELS)).astype(np.float32)
  words = rng.standard_normal((N, WORDS, WIDTH)).astype(np.float32)
  lengths = np.array([3, WORDS, 1])
  mask = np.arange(WORDS)[None, :] < lengths[:, None]
  return frames, words, mask


def _random_params(module, seed=0):
  """Module params replaced by N(0, 0.5²) draws, so biases and LayerNorm affine matter too."""
  frames, words, mask = _inputs()
  params = jax.jit(module.init)(jax.random.key(seed), frames, words, mask)["params"]
  leaves, tree = jax.tree_util.tree_flatten(params)
  rng = np.random.default_rng(seed + 100)
  return jax.tree_util.tree_unflatten(
      tree, [(0.5 * rng.standard_normal(x.shape)).astype(np.float32) for x in leaves])


def _np_harmonizer(p, frames, words, mask):
  f64 = lambda tree: jax.tree_util.tree_map(lambda x: np.asarray(x, np.float64), tree)
  p = f64(p)
  dense = lambda x, d: x @ d["kernel"] + d["bias"]
  query = dense(frames, p["frame_proj"])                                  # (N, T', d)
  memory = dense(words, p["word_proj"])                                   # (N, L, d)
  att = p["attention"]
  heads = lambda x, d: np.einsum("nte,ehk->nthk", x, d["kernel"]) + d["bias"]
  q, k, v = heads(query, att["query"]), heads(memory, att["key"]), heads(memory, att["value"])
  scores = np.einsum("nqhk,nlhk->nhql", q, k) / np.sqrt(q.shape[-1])
  out = np.zeros_like(q)
  for i in range(len(frames)):
    if mask[i].any():
      s = scores[i][..., mask[i]]                                          # (h, T', L_i)
      w = np.exp(s - s.max(-1, keepdims=True))
      w /= w.sum(-1, keepdims=True)
      out[i] = np.einsum("hql,lhk->qhk", w, v[i][mask[i]])
  attended = np.einsum("nqhk,hkd->nqd", out, att["out"]["kernel"]) + att["out"]["bias"]
  attended[~mask.any(-1)] = 0.0
  x = query + attended
  mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
  x = (x - mu) / np.sqrt(var + 1e-6) * p["norm"]["scale"] + p["norm"]["bias"]
  y = dense(x.mean(1), p["out_proj"])
  return y / np.linalg.norm(y, axis=-1, keepdims=True)


def test_matches_numpy_cross_attention():
  module = ModalityHarmonizer(dim=8, num_heads=2, out_dim=10)
  params = _random_params(module)
  frames, words, mask = _inputs()
  mask[2] = False   # one sample without words
  got = jax.jit(module.apply)({"params": params}, frames, words, mask)
  want = _np_harmonizer(params, frames, words, mask)
  np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)


def test_output_is_unit_norm_and_ignores_padding():
  module = ModalityHarmonizer(dim=16, num_heads=4, out_dim=10)
  frames, words, mask = _inputs(1)
  params = jax.jit(module.init)(jax.random.key(0), frames, words, mask)
  apply = jax.jit(module.apply)
  out = np.asarray(apply(params, frames, words, mask))
  assert out.shape == (N, 10)
  np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-5)
  # Rewrite every padded word (even with inf/nan): the output must not move.
  garbage = np.where(mask[..., None], words, np.float32(1e4))
  garbage[0, -1, 0] = np.nan
  np.testing.assert_allclose(np.asarray(apply(params, frames, garbage, mask)), out,
                             rtol=1e-6, atol=1e-6)
  # Changing a real word does move it: the words are used at all.
  changed = words.copy()
  changed[0, 0] += 1.0
  assert not np.allclose(np.asarray(apply(params, frames, changed, mask))[0], out[0])


def test_row_without_words_is_finite_with_finite_gradients():
  module = ModalityHarmonizer(dim=16, num_heads=4, out_dim=10)
  frames, words, mask = _inputs(2)
  mask[1] = False
  params = jax.jit(module.init)(jax.random.key(0), frames, words, mask)
  apply = jax.jit(module.apply)
  out = apply(params, frames, words, mask)
  assert np.isfinite(np.asarray(out)).all()
  # Its result depends on the frames only: any words give the same row.
  other_words = np.random.default_rng(9).standard_normal(words.shape).astype(np.float32)
  np.testing.assert_allclose(np.asarray(apply(params, frames, other_words, mask))[1],
                             np.asarray(out)[1], rtol=1e-6, atol=1e-6)
  grads = jax.jit(jax.grad(lambda p: jnp.sum(module.apply(p, frames, words, mask)[:, 0])))(params)
  assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree_util.tree_leaves(grads))


def test_dropout_needs_train_flag_and_rng():
  module = ModalityHarmonizer(dim=16, num_heads=4, out_dim=10, dropout=0.5)
  frames, words, mask = _inputs(3)
  params = jax.jit(module.init)(jax.random.key(0), frames, words, mask)
  apply = jax.jit(module.apply, static_argnames="train")
  eval_out = apply(params, frames, words, mask)
  np.testing.assert_array_equal(np.asarray(apply(params, frames, words, mask)),
                                np.asarray(eval_out))
  train_out = apply(params, frames, words, mask, train=True, rngs={"dropout": jax.random.key(1)})
  assert not np.allclose(np.asarray(train_out), np.asarray(eval_out))


def test_bad_shapes_raise_clear_errors():
  frames, words, mask = _inputs()
  with pytest.raises(ValueError, match="num_heads"):
    ModalityHarmonizer(dim=10, num_heads=4).init(jax.random.key(0), frames, words, mask)
  with pytest.raises(ValueError, match="word_mask"):
    ModalityHarmonizer(dim=8, num_heads=2).init(jax.random.key(0), frames, words, mask[:, :3])
