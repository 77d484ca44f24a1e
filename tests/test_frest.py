"""FreST against an independent numpy implementation (and TSLANet in torch).

The method: docs/method.md, "FreST".
"""
import functools

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from freqjax.models import STGCN, FreST, SpectralFilter
from freqjax.models.kernels import kernel_set
from helpers import import_torch
from helpers.torch_frest import frest_grads, torch_frest


def numpy_spectral_filter(x, w_global, w_local, threshold):
  """rFFT, mask, filters and irFFT in float64 numpy; x (B, L, C), weights (..., 2)."""
  length = x.shape[1]
  f = np.fft.rfft(x.astype(np.float64), axis=1, norm="ortho")
  energy = (np.abs(f) ** 2).sum(-1)
  lower_median = np.sort(energy, axis=1)[:, (energy.shape[1] - 1) // 2]
  normalized = energy / (lower_median[:, None] + 1e-6)
  mask = (normalized > threshold).astype(np.float64)[..., None]
  wg = w_global[..., 0] + 1j * w_global[..., 1]
  wl = w_local[..., 0] + 1j * w_local[..., 1]
  out = np.fft.irfft(f * wg + f * mask * wl, n=length, axis=1, norm="ortho")
  return out, normalized


def layer_norm(x, eps=1e-5):
  mean = x.mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(x.var(-1, keepdims=True) + eps)


@pytest.mark.parametrize("length,per_frequency", [(25, False), (13, False), (50, True)])
def test_spectral_filter_matches_numpy(length, per_frequency):
  x = np.random.default_rng(0).normal(size=(4, length, 8)).astype(np.float32)
  module = SpectralFilter(per_frequency=per_frequency)
  params = module.init(jax.random.key(1), x)["params"]
  expected_shape = (length // 2 + 1, 8, 2) if per_frequency else (8, 2)
  assert params["w_global"].shape == params["w_local"].shape == expected_shape
  assert params["threshold"].shape == () and 0 <= params["threshold"] <= 1
  # Make the local filter matter and the threshold fall inside the energies' range.
  # (The median bin itself sits at Ê = 1, so θ = 1 would be a coin toss in float32.)
  params = dict(params, w_local=params["w_local"] * 50, threshold=jnp.float32(1.3))
  p = jax.tree.map(np.asarray, params)
  expected, normalized = numpy_spectral_filter(x, p["w_global"], p["w_local"], 1.3)
  assert np.abs(normalized - 1.3).min() > 1e-3, "bins too close to θ for a float32 test"
  mask_fraction = (normalized > 1.3).mean()
  assert 0.05 < mask_fraction < 0.95  # the mask really selects some bins and not others
  got = module.apply({"params": params}, x)
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_frest_matches_numpy_decoupling():
  b, t, v, c = 2, 12, 25, 6
  x = np.random.default_rng(1).normal(size=(b, t, v, c)).astype(np.float32)
  module = FreST()
  params = module.init(jax.random.key(2), x)["params"]
  p = jax.tree.map(np.asarray, params)
  fres, _ = numpy_spectral_filter(layer_norm(x).reshape(b * t, v, c), p["fres"]["w_global"],
                                  p["fres"]["w_local"], p["fres"]["threshold"])
  frames = layer_norm(x).transpose(0, 2, 1, 3).reshape(b * v, t, c)
  fret, _ = numpy_spectral_filter(frames, p["fret"]["w_global"], p["fret"]["w_local"],
                                  p["fret"]["threshold"])
  expected = x + fres.reshape(b, t, v, c) + fret.reshape(b, v, t, c).transpose(0, 2, 1, 3)
  np.testing.assert_allclose(module.apply({"params": params}, x), expected, rtol=1e-5,
                             atol=1e-6)
  # Switching a branch off removes exactly its term.
  only_t = FreST(spatial=False).apply({"params": {k: params[k] for k in ("fret",
                                                                          "temporal_norm")}}, x)
  np.testing.assert_allclose(only_t, expected - fres.reshape(b, t, v, c), rtol=1e-5,
                             atol=1e-6)


def test_all_zero_sequence_is_finite_and_residual():
  x = jnp.zeros((2, 10, 25, 4))
  module = FreST()
  params = module.init(jax.random.key(0), x)
  out = module.apply(params, x)
  np.testing.assert_array_equal(out, x)
  grads = jax.grad(lambda p: jnp.sum(module.apply(p, x + 1.0) ** 2))(params)
  assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))
  grads = jax.grad(lambda xx: jnp.sum(module.apply(params, xx) ** 2))(x)
  assert np.isfinite(grads).all()


def test_gradient_reaches_threshold_and_both_filters():
  x = np.random.default_rng(3).normal(size=(4, 25, 8)).astype(np.float32)
  module = SpectralFilter()
  params = module.init(jax.random.key(4), x)["params"]
  params = dict(params, threshold=jnp.float32(1.0))
  grads = jax.grad(lambda p: jnp.sum(module.apply({"params": p}, x) ** 2))(params)
  for name in ("w_global", "w_local", "threshold"):
    assert np.abs(grads[name]).max() > 1e-6, name


def test_gradient_descent_on_the_filters_lowers_a_loss():
  """Real/imaginary float pairs make plain optax SGD descend (complex leaves would not)."""
  rng = np.random.default_rng(5)
  x = rng.normal(size=(16, 25, 8)).astype(np.float32)
  module = SpectralFilter()
  params = module.init(jax.random.key(6), x)["params"]
  target_params = dict(params, w_global=jnp.asarray(rng.normal(size=(8, 2)), jnp.float32))
  target = module.apply({"params": target_params}, x)
  loss = lambda p: jnp.mean((module.apply({"params": p}, x) - target) ** 2)
  tx = optax.sgd(0.5, momentum=0.9)
  state = tx.init(params)

  @jax.jit
  def step(params, state):
    value, grads = jax.value_and_grad(loss)(params)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state, value

  first = float(loss(params))
  for _ in range(100):
    params, state, _ = step(params, state)
  assert float(loss(params)) < 1e-2 * first


def test_jit_and_vmap():
  x = jax.random.normal(jax.random.key(0), (3, 2, 12, 25, 4))  # (S, B, T, V, C)
  module = FreST()
  params = module.init(jax.random.key(1), x[0])
  batched = jax.jit(jax.vmap(lambda xi: module.apply(params, xi)))(x)
  for s in range(3):
    np.testing.assert_allclose(batched[s], module.apply(params, x[s]), rtol=1e-5, atol=1e-6)


def test_frest_off_gives_the_plain_encoder():
  x = jax.random.normal(jax.random.key(0), (2, 3, 16, 25, 2))
  # Flax's init: under the reference init an untrained encoder's outputs are ~1e-6 in
  # inference mode, too small for the "FreST changes the output" check below.
  plain = STGCN(frest_blocks=(), init_scheme="flax")
  variables = plain.init(jax.random.key(1), x, train=False)
  off = STGCN(frest_blocks=(9,), frest_spatial=False, frest_temporal=False, init_scheme="flax")
  assert jax.tree.structure(off.init(jax.random.key(1), x, train=False)) == jax.tree.structure(
      variables)
  h_plain, _ = plain.apply(variables, x, train=False)
  h_off, _ = off.apply(variables, x, train=False)
  np.testing.assert_array_equal(h_plain, h_off)
  # And with FreST on, the output differs (the block is really in the graph).
  on = STGCN(frest_blocks=(9,), init_scheme="flax")
  on_vars = on.init(jax.random.key(1), x, train=False)
  h_on, _ = on.apply(on_vars, x, train=False)
  assert np.abs(np.asarray(h_on) - np.asarray(h_plain)).max() > 1e-4


def test_matches_tslanet_adaptive_spectral_block():
  """The spectral filter equals TSLANet's PyTorch block on the same weights."""
  torch = import_torch()

  class AdaptiveSpectralBlock(torch.nn.Module):  # TSLANet, adaptive_filter=True
    def __init__(self, dim):
      super().__init__()
      self.complex_weight_high = torch.nn.Parameter(torch.randn(dim, 2) * 0.02)
      self.complex_weight = torch.nn.Parameter(torch.randn(dim, 2) * 0.02)
      self.threshold_param = torch.nn.Parameter(torch.rand(1))

    def create_adaptive_high_freq_mask(self, x_fft):
      b = x_fft.shape[0]
      energy = torch.abs(x_fft).pow(2).sum(dim=-1)
      median_energy = energy.view(b, -1).median(dim=1, keepdim=True)[0].view(b, 1)
      normalized_energy = energy / (median_energy + 1e-6)
      mask = ((normalized_energy > self.threshold_param).float() - self.threshold_param
              ).detach() + self.threshold_param
      return mask.unsqueeze(-1)

    def forward(self, x_in):
      b, n, c = x_in.shape
      x_fft = torch.fft.rfft(x_in, dim=1, norm="ortho")
      x_weighted = x_fft * torch.view_as_complex(self.complex_weight)
      x_masked = x_fft * self.create_adaptive_high_freq_mask(x_fft)
      x_weighted = x_weighted + x_masked * torch.view_as_complex(self.complex_weight_high)
      return torch.fft.irfft(x_weighted, n=n, dim=1, norm="ortho").view(b, n, c)

  torch.manual_seed(0)
  block = AdaptiveSpectralBlock(8)
  x = torch.randn(6, 24, 8)
  with torch.no_grad():
    block.threshold_param.fill_(0.9)
  expected = block(x)
  expected.pow(2).sum().backward()
  params = {"w_global": jnp.asarray(block.complex_weight.detach().numpy()),
            "w_local": jnp.asarray(block.complex_weight_high.detach().numpy()),
            "threshold": jnp.float32(0.9)}
  apply = lambda p: SpectralFilter().apply({"params": p}, x.numpy())
  np.testing.assert_allclose(apply(params), expected.detach().numpy(), rtol=1e-4, atol=1e-6)
  # PyTorch's gradient of a real loss w.r.t. (re, im) pairs is what jax gives for pairs.
  grads = jax.grad(lambda p: jnp.sum(apply(p) ** 2))(params)
  np.testing.assert_allclose(grads["w_global"], block.complex_weight.grad.numpy(), rtol=1e-3,
                             atol=1e-5)
  np.testing.assert_allclose(grads["w_local"], block.complex_weight_high.grad.numpy(),
                             rtol=1e-3, atol=1e-5)
  np.testing.assert_allclose(grads["threshold"], block.threshold_param.grad.numpy()[0],
                             rtol=1e-3)


@pytest.mark.parametrize("kernels", ["cpu", "xla"])
def test_layer_norm_gradients_match_pytorch_in_float64(kernels):
  """`layer_norm` (the CPU set's hand-written backward, the XLA set's autodiff) against
  PyTorch autograd of `F.layer_norm`: input, scale and bias gradients, rows of very
  different scales."""
  torch = import_torch()
  rng = np.random.default_rng(7)
  x = rng.normal(size=(3, 5, 25, 6)) * rng.uniform(0.1, 10, size=(3, 5, 25, 1)) + rng.normal(
      size=(3, 5, 25, 1))
  scale, bias, cotangent = rng.normal(size=6), rng.normal(size=6), rng.normal(size=x.shape)
  inputs = [torch.tensor(a, requires_grad=True) for a in (x, scale, bias)]
  expected = torch.nn.functional.layer_norm(inputs[0], (6,), inputs[1], inputs[2], eps=1e-5)
  (expected * torch.tensor(cotangent)).sum().backward()
  with jax.enable_x64(True):
    got, vjp = jax.vjp(lambda *a: kernel_set(kernels).layer_norm(*a, 1e-5), x, scale, bias)
    grads = vjp(cotangent)
  assert got.dtype == np.float64
  np.testing.assert_allclose(got, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
  for name, value, want in zip(("x", "scale", "bias"), grads, inputs):
    np.testing.assert_allclose(value, want.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def _float64_test_params(module, x, rng, seed):
  """`module`'s parameters in float64, with a local filter that matters, θ inside the
  energies and LayerNorm scales and biases away from 1 and 0 (6 channels)."""
  params = jax.tree.map(lambda a: np.asarray(a, np.float64),
                        module.init(jax.random.key(seed), x.astype(np.float32))["params"])
  for branch in ("fres", "fret"):
    if branch in params:
      params[branch]["w_local"] = 50 * params[branch]["w_local"]
      params[branch]["threshold"] = np.float64(1.3)
  for norm in ("spatial_norm", "temporal_norm"):
    if norm in params:
      params[norm]["scale"] = rng.uniform(0.5, 1.5, size=6)
      params[norm]["bias"] = rng.normal(0, 0.3, size=6)
  return params


def _assert_grads_equal(grads, expected):
  """Every leaf of `grads` equals the same path of `expected` (PyTorch's) to float64."""
  for path, value in jax.tree_util.tree_flatten_with_path(grads)[0]:
    want = functools.reduce(lambda t, k: t[k.key], path, expected)
    np.testing.assert_allclose(value, want, rtol=1e-9, atol=1e-12,
                               err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("kernels", ["cpu", "xla"])
@pytest.mark.parametrize("per_frequency", [True, False])
def test_frest_gradients_match_pytorch_in_float64(per_frequency, kernels):
  """FreST (both branches, LayerNorms, per-frequency or per-channel weights) against the
  PyTorch FreST of `helpers/torch_frest.py`: every parameter's gradient and the input's."""
  torch = import_torch()
  rng = np.random.default_rng(8)
  x = rng.normal(size=(2, 12, 25, 6))  # (B, T, V, C): 13 joint bins, 7 frame bins
  cotangent = rng.normal(size=x.shape)
  module = FreST(per_frequency=per_frequency, kernels=kernels)
  params = _float64_test_params(module, x, rng, seed=9)
  if per_frequency:
    assert params["fres"]["w_global"].shape == (13, 6, 2)
    assert params["fret"]["w_global"].shape == (7, 6, 2)

  reference = torch_frest(params)
  x_torch = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)  # (B, C, T, V)
  out = reference(x_torch)
  (out * torch.tensor(cotangent.transpose(0, 3, 1, 2).copy())).sum().backward()
  expected = frest_grads(reference)
  with jax.enable_x64(True):
    got, vjp = jax.vjp(lambda p, x: module.apply({"params": p}, x), params, x)
    grads, grad_x = vjp(cotangent)
  assert grad_x.dtype == np.float64
  np.testing.assert_allclose(got, out.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-9,
                             atol=1e-12)
  np.testing.assert_allclose(grad_x, x_torch.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9,
                             atol=1e-12)
  assert jax.tree.structure(grads) == jax.tree.structure(expected)
  _assert_grads_equal(grads, expected)


@pytest.mark.parametrize("per_frequency,frames,kernels,branches", [
    (True, 12, "cpu", {}), (False, 13, "cpu", {}), (True, 12, "xla", {}),
    (False, 13, "xla", {}), (False, 13, "cpu", {"temporal": False}),
    (True, 12, "cpu", {"spatial": False}), (False, 12, "cpu", {"layer_norm": False})])
def test_mean_over_joints_matches_pytorch_in_float64(per_frequency, frames, kernels,
                                                     branches):
  """FreST after the encoder's last block computes only the mean over joints of its output
  (`mean_over_joints`, `joint_mean_of_frest`), with either branch alone and without the
  LayerNorms too. Against the PyTorch FreST's full output averaged over joints: the value,
  every parameter's gradient and the input's."""
  torch = import_torch()
  rng = np.random.default_rng(11)
  x = rng.normal(size=(2, frames, 25, 6))  # (B, T, V, C)
  cotangent = rng.normal(size=(2, frames, 6))
  module = FreST(per_frequency=per_frequency, kernels=kernels, mean_over_joints=True,
                 **branches)
  params = _float64_test_params(module, x, rng, seed=12)

  reference = torch_frest(params)
  x_torch = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True)  # (B, C, T, V)
  out = reference(x_torch).mean(dim=3)  # (B, C, T)
  (out * torch.tensor(cotangent.transpose(0, 2, 1).copy())).sum().backward()
  expected = frest_grads(reference)
  with jax.enable_x64(True):
    got, vjp = jax.vjp(lambda p, x: module.apply({"params": p}, x), params, x)
    grads, grad_x = vjp(cotangent)
  assert got.shape == (2, frames, 6) and grad_x.dtype == np.float64
  np.testing.assert_allclose(got, out.detach().numpy().transpose(0, 2, 1), rtol=1e-9,
                             atol=1e-12)
  np.testing.assert_allclose(grad_x, x_torch.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9,
                             atol=1e-12)
  assert jax.tree.structure(grads) == jax.tree.structure(expected)
  _assert_grads_equal(grads, expected)


def _fft_operand_sizes(fn, *args) -> list[int]:
  """The operand sizes of every FFT in `fn`'s jaxpr, nested calls included."""
  sizes = []

  def visit(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == "fft":
        sizes.append(int(np.prod(eqn.invars[0].aval.shape)))
      for param in eqn.params.values():
        for sub in param if isinstance(param, (list, tuple)) else (param,):
          if isinstance(sub, jax.extend.core.ClosedJaxpr):
            visit(sub.jaxpr)
          elif isinstance(sub, jax.extend.core.Jaxpr):
            visit(sub)

  visit(jax.make_jaxpr(fn)(*args).jaxpr)
  return sizes


def test_mean_over_joints_leaves_out_the_transforms_the_mean_discards():
  """The pooled FreST's forward and backward pass transform the whole map only for the
  masks' energies, once over joints and once over frames, both in the forward pass:
  two transforms of the map's size, against eight for the full FreST followed by a mean."""
  x = np.random.default_rng(13).normal(size=(2, 13, 25, 8)).astype(np.float32)
  full, pooled = FreST(), FreST(mean_over_joints=True)
  params = full.init(jax.random.key(14), x)

  def loss(module, x):
    out = module.apply(params, x)
    return jnp.sum(out if module.mean_over_joints else out.mean(axis=2))

  def map_sized(sizes):
    return len([size for size in sizes if size >= x.size // 2])

  assert map_sized(_fft_operand_sizes(jax.grad(functools.partial(loss, full)), x)) == 8
  assert map_sized(_fft_operand_sizes(jax.grad(functools.partial(loss, pooled)), x)) == 2
