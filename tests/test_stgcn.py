"""The ST-GCN encoder against an independent numpy forward of the PyTorch model.

The state dict is built from `helpers/aimclr_stgcn_state_dict.txt` (the names and shapes of
AimCLR's ST-GCN state dict) and imported with `freqjax.checkpoints.pytorch`.
"""
import math

import jax
import numpy as np
import pytest
from flax import linen as nn

from freqjax import graph
from freqjax.checkpoints import pytorch as convert
from freqjax.models import STGCN, count_params
from freqjax.models.kernels import kernel_set
from freqjax.models.stgcn import GraphConv, TemporalConv
from helpers import import_torch
from helpers.torch_frest import frest_grads, torch_frest
from helpers.torch_stgcn import (random_state_dict, reference_shapes, stgcn_shapes,
                                 torch_stgcn)

def _bn(x, sd, prefix, train, momentum=0.1, eps=1e-5):
  """PyTorch BatchNorm over axis 1; returns output and (new mean, new var)."""
  axes = tuple(i for i in range(x.ndim) if i != 1)
  shape = [1] * x.ndim
  shape[1] = -1
  if train:
    mean, var = x.mean(axes), x.var(axes)
    n = x.size / x.shape[1]
    new = ((1 - momentum) * sd[prefix + ".running_mean"] + momentum * mean,
           (1 - momentum) * sd[prefix + ".running_var"] + momentum * var * n / (n - 1))
  else:
    mean, var = sd[prefix + ".running_mean"], sd[prefix + ".running_var"]
    new = None
  y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
  return y * sd[prefix + ".weight"].reshape(shape) + sd[prefix + ".bias"].reshape(shape), new


def _conv(x, w, b, stride=1):
  """PyTorch Conv2d with a (kT, 1) kernel, padding (kT-1)//2 on T; x (N, C, T, V)."""
  kt = w.shape[2]
  pad = (kt - 1) // 2
  xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (0, 0)))
  t_out = (x.shape[2] + 2 * pad - kt) // stride + 1
  out = np.zeros((x.shape[0], w.shape[0], t_out, x.shape[3]))
  for k in range(kt):
    window = xp[:, :, k:k + stride * (t_out - 1) + 1:stride]
    out += np.einsum("oi,nitv->notv", w[:, :, k, 0], window)
  return out + b[None, :, None, None]


def numpy_stgcn(sd, x, train):
  """SkeletonCLR's `Model.forward` up to the pooled feature, in float64 numpy."""
  sd = {k: v.astype(np.float64) for k, v in sd.items()}
  n, c, t, v, m = x.shape
  stats = {}
  x = x.astype(np.float64).transpose(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
  x, stats["data_bn"] = _bn(x, sd, "data_bn", train)
  x = x.reshape(n, m, v, c, t).transpose(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
  a = sd["A"]
  strides = [1, 1, 1, 1, 2, 1, 1, 2, 1, 1]
  for i, stride in enumerate(strides):
    p = f"st_gcn_networks.{i}"
    c_out = sd[f"{p}.tcn.2.weight"].shape[0]
    if i == 0:
      res = 0.0
    elif f"{p}.residual.0.weight" in sd:
      res, stats[f"{p}.residual.1"] = _bn(
          _conv(x, sd[f"{p}.residual.0.weight"], sd[f"{p}.residual.0.bias"], stride), sd,
          f"{p}.residual.1", train)
    else:
      res = x
    y = _conv(x, sd[f"{p}.gcn.conv.weight"], sd[f"{p}.gcn.conv.bias"])
    nm, kc, tt, vv = y.shape
    y = y.reshape(nm, 3, kc // 3, tt, vv)
    y = np.einsum("nkctv,kvw->nctw", y, a * sd[f"edge_importance.{i}"])
    y, stats[f"{p}.tcn.0"] = _bn(y, sd, f"{p}.tcn.0", train)
    y = _conv(np.maximum(y, 0), sd[f"{p}.tcn.2.weight"], sd[f"{p}.tcn.2.bias"], stride)
    y, stats[f"{p}.tcn.3"] = _bn(y, sd, f"{p}.tcn.3", train)
    x = np.maximum(y + res, 0)
    assert x.shape[1] == c_out
  h = x.mean(axis=(2, 3)).reshape(n, m, -1).mean(axis=1)
  return h, stats


@pytest.fixture(scope="module")
def imported():
  sd = random_state_dict()
  return sd, convert.stgcn_from_pytorch(sd)


@pytest.fixture(scope="module")
def inputs():
  x = np.random.default_rng(1).normal(size=(3, 3, 20, 25, 2)).astype(np.float32)
  x[1, :, :, :, 1] = 0  # one sample with an absent second person
  x[2, :, 15:] = 0      # and one zero-padded at the end
  return x


def test_param_count_equals_skeletonclr():
  shapes = reference_shapes()
  learnable = sum(math.prod(s) for k, s in shapes.items()
                  if k != "A" and "running" not in k and "num_batches" not in k
                  and not k.startswith("fc."))
  variables = jax.eval_shape(lambda: STGCN(frest_blocks=()).init(
      jax.random.key(0), np.zeros((1, 3, 8, 25, 2), np.float32), train=False))
  assert count_params(variables["params"]) == learnable == 821380


def test_output_shapes(inputs):
  # FreST after the last block by default. The reference initialisation's inference-mode
  # features of an untrained encoder are ~1e-9 (N(0, 0.02²) kernels, BatchNorm running
  # statistics 0 and 1), where float32 rounding of the two means reaches rtol 1e-5.
  model = STGCN(init_scheme="flax")
  variables = model.init(jax.random.key(0), inputs, train=False)
  h, frame_features = model.apply(variables, inputs, train=False)
  assert h.shape == (3, 256) and frame_features.shape == (3, 5, 256)
  np.testing.assert_allclose(h, frame_features.mean(axis=1), rtol=1e-5)


def test_eval_forward_matches_numpy_reference(imported, inputs):
  sd, variables = imported
  h, _ = STGCN(frest_blocks=()).apply(variables, inputs, train=False)
  expected, _ = numpy_stgcn(sd, inputs, train=False)
  assert np.abs(expected).mean() > 0.05  # the comparison is not between near-zeros
  np.testing.assert_allclose(h, expected, rtol=2e-4, atol=2e-5)


def test_train_forward_and_running_stats_match_numpy_reference(imported, inputs):
  sd, variables = imported
  model = STGCN(frest_blocks=(), dropout=0.0)
  (h, _), new = model.apply(variables, inputs, train=True, mutable=["batch_stats"])
  expected, stats = numpy_stgcn(sd, inputs, train=True)
  np.testing.assert_allclose(h, expected, rtol=2e-4, atol=2e-5)
  got = new["batch_stats"]
  np.testing.assert_allclose(got["data_bn"]["mean"], stats["data_bn"][0], rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(got["data_bn"]["var"], stats["data_bn"][1], rtol=1e-4)
  np.testing.assert_allclose(got["block9"]["tcn_bn2"]["var"],
                             stats["st_gcn_networks.9.tcn.3"][1], rtol=1e-4)
  np.testing.assert_allclose(got["block4"]["residual_bn"]["mean"],
                             stats["st_gcn_networks.4.residual.1"][0], rtol=1e-4, atol=1e-5)


def test_dropout_is_active_only_in_training(imported, inputs):
  _, variables = imported
  model = STGCN(frest_blocks=())
  run = lambda key: model.apply(variables, inputs, train=True, rngs={"dropout": key},
                                mutable=["batch_stats"])[0][0]
  assert np.abs(np.asarray(run(jax.random.key(0)) - run(jax.random.key(1)))).max() > 1e-3
  # In eval mode the model with dropout 0.5 is the model without dropout.
  without = STGCN(frest_blocks=(), dropout=0.0).apply(variables, inputs, train=False)[0]
  np.testing.assert_array_equal(model.apply(variables, inputs, train=False)[0], without)


def test_matches_pytorch_model(imported, inputs):
  """The same weights in a PyTorch ST-GCN (SkeletonCLR's code) give the same features."""
  torch = import_torch()
  sd, variables = imported
  torch_model = torch_stgcn(sd)
  x = torch.tensor(inputs)
  for train in (False, True):
    torch_model.train(train)
    with torch.no_grad():
      expected = torch_model(x).numpy()
    got = STGCN(frest_blocks=(), dropout=0.0).apply(variables, inputs, train=train,
                                                    mutable=["batch_stats"])[0][0]
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)
  # After one training forward the running statistics agree too (unbiased variance).
  _, new = STGCN(frest_blocks=(), dropout=0.0).apply(variables, inputs, train=True,
                                                     mutable=["batch_stats"])
  np.testing.assert_allclose(new["batch_stats"]["block7"]["tcn_bn1"]["var"],
                             torch_model.st_gcn_networks[7].tcn[0].running_var.numpy(),
                             rtol=1e-4)


@pytest.mark.slow
def test_gradients_match_pytorch_autograd(imported):
  """Training-mode gradients of every parameter and of the input equal PyTorch autograd's.

  The encoder computes batch statistics, graph convolutions, strided convolutions and
  biases with hand-written backward passes; this checks them all at once, in float64 on
  both sides. (In float32 some gradients differ by up to a few percent: the gradient of a
  ReLU network jumps where an activation crosses zero, and float32 rounding of the
  forward pass, ~1e-6 relative here, moves a few activations across; perturbing the
  input by 1e-6 moves PyTorch's float64 gradients by ~0.4 % as well.)
  """
  torch = import_torch()
  sd, variables = imported
  torch_model = torch_stgcn(sd).double()
  torch_model.train(True)
  rng = np.random.default_rng(2)
  inputs = rng.normal(size=(3, 3, 12, 25, 2))
  inputs[1, :, :, :, 1] = 0  # an absent second person
  weights = rng.normal(size=(3, 256))
  x = torch.tensor(inputs, requires_grad=True)
  (torch_model(x) * torch.tensor(weights)).sum().backward()
  grads = {name: p.grad.numpy() for name, p in torch_model.named_parameters()
           if p.grad is not None}  # the unused classifier has none
  expected = dict(jax.tree_util.tree_flatten_with_path(
      convert.stgcn_from_pytorch({**sd, **grads})["params"])[0])

  model = STGCN(frest_blocks=(), dropout=0.0)
  with jax.enable_x64(True):
    params, stats = jax.tree.map(lambda a: np.asarray(a, np.float64), (
        variables["params"], variables["batch_stats"]))

    def loss(params, x):
      h = model.apply({"params": params, "batch_stats": stats}, x, train=True,
                      mutable=["batch_stats"])[0][0]
      return (h * weights).sum()

    got, got_x = jax.grad(loss, argnums=(0, 1))(params, inputs)
  assert got_x.dtype == np.float64
  # The adjacency is a float32 constant: agreement to ~1e-7, not float64 precision. (The
  # biases that feed a batch norm have an exactly zero gradient: hence the absolute part.)
  largest = max(np.abs(want).max() for want in expected.values())
  for path, value in jax.tree_util.tree_flatten_with_path(got)[0]:
    name, want = jax.tree_util.keystr(path), expected[path]
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-8 * largest, err_msg=name)
  np.testing.assert_allclose(got_x, x.grad.numpy(), rtol=1e-5,
                             atol=1e-6 * np.abs(x.grad.numpy()).max())


@pytest.mark.slow
def test_gradients_with_frest_match_pytorch_autograd():
  """The encoder WITH FreST after blocks 3 and 9 against the PyTorch ST-GCN with the
  PyTorch FreST (`helpers/torch_frest.py`, TSLANet's spectral block) in the same places:
  every parameter's gradient and the input's, training mode, float64, at small widths
  (4…16 channels) and 16 frames. Block 9 is freqjax's default place; there the pooled
  feature sees only the zero-frequency bins (the mean over joints and frames), so block 3
  carries every bin through the later blocks into the feature. (The CPU kernel set, the
  one with hand-written backward passes; test_kernels.py checks the XLA set against it.)"""
  torch = import_torch()
  sd = random_state_dict(seed=3, shapes=stgcn_shapes(hidden_channels=4, hidden_dim=16))
  widths = dict(hidden_channels=4, hidden_dim=16, dropout=0.0, kernels="cpu")
  plain = STGCN(frest_blocks=(), **widths)
  model = STGCN(frest_blocks=(3, 9), **widths)
  variables = convert.stgcn_from_pytorch(sd, plain, dtype=np.float64)
  rng = np.random.default_rng(4)
  inputs = rng.normal(size=(3, 3, 16, 25, 2))
  inputs[1, :, :, :, 1] = 0  # an absent second person
  initial = jax.tree.map(lambda a: np.asarray(a, np.float64), model.init(
      jax.random.key(5), inputs.astype(np.float32), train=False)["params"])
  frest = {i: initial[f"frest{i}"] for i in (3, 9)}
  for block in frest.values():
    for branch in ("fres", "fret"):  # filters large enough to matter beside the residual
      block[branch]["w_global"] = 20 * block[branch]["w_global"]
      block[branch]["w_local"] = 50 * block[branch]["w_local"]
      block[branch]["threshold"] = np.float64(1.2)
  params = {**variables["params"], **{f"frest{i}": p for i, p in frest.items()}}

  torch_model = torch_stgcn(sd, after_block={i: torch_frest(p) for i, p in frest.items()})
  torch_model = torch_model.double()
  torch_model.train(True)
  weights = rng.normal(size=(3, 16))
  x = torch.tensor(inputs, requires_grad=True)
  (torch_model(x) * torch.tensor(weights)).sum().backward()
  grads = {name: p.grad.numpy() for name, p in torch_model.named_parameters()
           if p.grad is not None and not name.startswith("after_block.")}
  expected = convert.stgcn_from_pytorch({**sd, **grads}, plain, dtype=np.float64)["params"]
  for i in frest:
    expected[f"frest{i}"] = frest_grads(torch_model.after_block[str(i)])

  with jax.enable_x64(True):
    def loss(params, x):
      h = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                      train=True, mutable=["batch_stats"])[0][0]
      return (h * weights).sum()

    got, got_x = jax.grad(loss, argnums=(0, 1))(params, inputs)
  assert got_x.dtype == np.float64
  assert jax.tree.structure(got) == jax.tree.structure(expected)
  # As above: the float32 adjacency constant limits the agreement to ~1e-7.
  flat_expected = dict(jax.tree_util.tree_flatten_with_path(expected)[0])
  largest = max(np.abs(want).max() for want in flat_expected.values())
  for path, value in jax.tree_util.tree_flatten_with_path(got)[0]:
    name, want = jax.tree_util.keystr(path), flat_expected[path]
    np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-8 * largest, err_msg=name)
  np.testing.assert_allclose(got_x, x.grad.numpy(), rtol=1e-5,
                             atol=1e-6 * np.abs(x.grad.numpy()).max())


@pytest.mark.parametrize("frames,kernel_size,stride", [(25, 9, 2), (24, 9, 2), (13, 9, 1),
                                                       (20, 5, 3), (7, 1, 2)])
def test_temporal_conv_equals_strided_convolution(frames, kernel_size, stride):
  """The phase-split convolution equals `nn.Conv` with strides, outputs and gradients."""
  rng = np.random.default_rng(frames + stride)
  x = rng.normal(size=(2, frames, 3, 4)).astype(np.float32)
  ours = TemporalConv(5, kernel_size, stride)
  pad = (kernel_size - 1) // 2
  reference = nn.Conv(5, (kernel_size, 1), strides=(stride, 1), padding=((pad, pad), (0, 0)))
  variables = ours.init(jax.random.key(0), x)
  variables = {"params": {"kernel": variables["params"]["kernel"],
                          "bias": rng.normal(size=5).astype(np.float32)}}
  np.testing.assert_allclose(ours.apply(variables, x), reference.apply(variables, x),
                             rtol=1e-5, atol=1e-5)
  assert ours.apply(variables, x).shape[1] == -(-frames // stride)
  cotangent = rng.normal(size=ours.apply(variables, x).shape).astype(np.float32)
  grad = lambda model: jax.grad(lambda v, x: (model.apply(v, x) * cotangent).sum(),
                                argnums=(0, 1))(variables, x)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               grad(ours), grad(reference))


@pytest.mark.parametrize("c_in,features", [(3, 16), (64, 256)])  # dense and factored forms
def test_graph_conv_matches_einsum_reference(c_in, features):
  """Both arithmetic orders of the graph convolution give PyTorch's order's result."""
  rng = np.random.default_rng(c_in)
  x = rng.normal(size=(2, 3, 25, c_in)).astype(np.float32)
  a = graph.adjacency("ntu-rgb+d").astype(np.float32)
  conv = GraphConv(features)
  params = {"kernel": rng.normal(size=(c_in, 3 * features)).astype(np.float32) / c_in,
            "bias": rng.normal(size=3 * features).astype(np.float32)}
  got = conv.apply({"params": params}, x, a)
  y = (x.astype(np.float64) @ params["kernel"] + params["bias"]).reshape(2, 3, 25, 3, features)
  np.testing.assert_allclose(got, np.einsum("btvkc,kvw->btwc", y, a), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernels", ["cpu", "xla"])
@pytest.mark.parametrize("rate", [0.5, 0.3, 0.0])  # cpu: 8-bit draws, 16-bit draws, identity
def test_dropout_drops_at_its_rate_and_keeps_the_mean(rate, kernels):
  dropout = kernel_set(kernels).dropout
  x = np.full((64, 50, 25, 3), 2.0, np.float32)
  out = np.asarray(dropout(jax.random.key(0), x, rate))
  kept = out != 0
  # 240,000 Bernoulli draws: the dropped fraction is within 4 standard deviations.
  assert abs((1 - kept.mean()) - rate) < 4 * np.sqrt(rate * (1 - rate) / x.size) + 1e-12
  np.testing.assert_allclose(out[kept], 2.0 / (1 - rate), rtol=1e-6)
  # Different keys draw different masks; neighbouring entries are not tied together.
  if rate > 0:
    other = np.asarray(dropout(jax.random.key(1), x, rate)) != 0
    assert 0.3 < (kept != other).mean() < 0.7
    assert abs(np.mean(kept[..., 0] == kept[..., 1]) - (rate**2 + (1 - rate)**2)) < 0.01
