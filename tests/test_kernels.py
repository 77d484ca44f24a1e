"""The two kernel sets compute the same encoder; `auto` picks by platform; remat is exact.

`freqjax.models.kernels.cpu` (hand-written backward passes, dense graph-conv fold,
per-phase strided convolutions, wide convolutions through the Fourier transform) and
`kernels.xla` (plain ops and autodiff) are two formulations of one encoder. Each is
checked against the other here on the whole encoder with FreST (outputs, every
parameter's and the input's gradient, the new BatchNorm statistics). The CPU set, which
`auto` picks on this machine, is checked against independent references (numpy, PyTorch)
in test_stgcn.py, test_frest.py and test_spectral_conv.py, so the agreement here carries
those checks over to the XLA set.
"""

import re

import jax
import numpy as np
import pytest

from freqjax import graph
from freqjax.models import STGCN
from freqjax.models.kernels import KERNELS, resolve_kernels
from freqjax.models.kernels import cpu as kernels_cpu
from freqjax.models.kernels import spectral_conv
from freqjax.models.stgcn import STGCNBlock

# Blocks 0-8 (8-32 channels) take the CPU set's dense graph-conv fold, block 9 (32 -> 64)
# its factored form; blocks 4 and 7 have stride 2 (the per-phase convolution). Flax's
# initialisation keeps activations O(1) through ten blocks (the reference's N(0, 0.02²)
# shrinks them to ~1e-6, where relative comparisons only see rounding).
MODEL = dict(hidden_channels=8, hidden_dim=64, dropout=0.0, frest_blocks=(9,),
             init_scheme="flax")
AXIS = "shards"


def _inputs(dtype=np.float32):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 3, 12, 25, 2))
  x[1, :, :, :, 1] = 0  # an absent second person
  return x.astype(dtype), rng.normal(size=(4, 64)).astype(dtype)


def _variables(x):
  """Parameters and non-trivial running statistics (one training-mode pass)."""
  model = STGCN(**MODEL, kernels="cpu")
  variables = model.init(jax.random.key(0), x, train=False)
  _, new = model.apply(variables, x, train=True, mutable=["batch_stats"])
  return {"params": variables["params"], "batch_stats": new["batch_stats"]}


def _forward_and_grads(kernels, variables, x, weights, train, **model_args):
  """`(h, new batch_stats, d(h·weights)/d(params, x))`, jitted."""
  model = STGCN(**MODEL | model_args, kernels=kernels)

  def loss(params, x):
    out = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                      train=train, mutable=["batch_stats"], rngs={"dropout": jax.random.key(3)})
    (h, _), new = out
    return (h * weights).sum(), (h, new["batch_stats"])

  (_, (h, stats)), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
      variables["params"], x)
  return h, stats, grads


def _assert_trees_close(got, want, rtol, leaf_atol, tree_atol):
  """Leaf by leaf, with an absolute floor of `leaf_atol` × the leaf's largest entry or
  `tree_atol` × the tree's, whichever is larger. The tree's floor is for the values that
  are 0 in exact arithmetic and rounding noise in both sets: the gradient of a bias that
  feeds a BatchNorm, the batch mean of a bias-free linear map of normalised inputs."""
  flat_want = dict(jax.tree_util.tree_flatten_with_path(want)[0])
  largest = max(np.abs(np.asarray(leaf)).max() for leaf in flat_want.values())
  for path, value in jax.tree_util.tree_flatten_with_path(got)[0]:
    expected = np.asarray(flat_want[path])
    atol = max(leaf_atol * np.abs(expected).max(), tree_atol * largest)
    np.testing.assert_allclose(value, expected, rtol=rtol, atol=atol,
                               err_msg=jax.tree_util.keystr(path))


@pytest.mark.parametrize("train", [True, pytest.param(False, marks=pytest.mark.slow)])
def test_kernel_sets_agree_in_float32(train):
  """Same outputs and gradients in float32, in training (batch statistics) and inference
  mode. The gradients agree to ~1e-4 of each leaf's scale, not to float32 precision: a
  different summation order moves a few ReLU activations across zero (see test_stgcn's
  float64 gradient test), so the float64 test below is the tight one."""
  x, weights = _inputs()
  variables = _variables(x)
  h_cpu, stats_cpu, grads_cpu = _forward_and_grads("cpu", variables, x, weights, train)
  h_xla, stats_xla, grads_xla = _forward_and_grads("xla", variables, x, weights, train)
  np.testing.assert_allclose(h_xla, h_cpu, rtol=1e-4, atol=1e-5 * np.abs(h_cpu).max())
  _assert_trees_close(stats_xla, stats_cpu, rtol=1e-4, leaf_atol=1e-5, tree_atol=1e-6)
  _assert_trees_close(grads_xla, grads_cpu, rtol=1e-3, leaf_atol=1e-3, tree_atol=1e-4)


@pytest.mark.slow
def test_kernel_sets_agree_in_float64_with_statistics_synced_over_devices():
  """The tight check: float64, training mode, the batch split over 2 devices of a named
  axis (`vmap` with `axis_name`, the collectives of `pmap`) whose BatchNorm statistics
  are those of the whole batch: the CPU set's hand-written `pmean` in the backward pass
  and autodiff through the XLA set's `pmean` give the same gradients."""
  x32, w32 = _inputs()
  variables32 = _variables(x32)
  with jax.enable_x64(True):
    x, weights = x32.astype(np.float64), w32.astype(np.float64)
    variables = jax.tree.map(lambda a: np.asarray(a, np.float64), variables32)
    shard = lambda a: a.reshape(2, a.shape[0] // 2, *a.shape[1:])
    results = {}
    for kernels in ("cpu", "xla"):
      model = STGCN(**MODEL, kernels=kernels, bn_axis_name=AXIS)

      def loss(params, x, w):
        (h, _), new = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                  x, train=True, mutable=["batch_stats"])
        return (h * w).sum(), (h, new["batch_stats"])

      def per_device(params, x, w):
        (_, aux), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(params, x, w)
        return aux, (jax.lax.psum(grads[0], AXIS), grads[1])

      results[kernels] = jax.jit(jax.vmap(per_device, in_axes=(None, 0, 0), axis_name=AXIS))(
          variables["params"], shard(x), shard(weights))
    (h_cpu, stats_cpu), grads_cpu = results["cpu"]
    (h_xla, stats_xla), grads_xla = results["xla"]
    assert h_cpu.dtype == grads_xla[1].dtype == np.float64
    np.testing.assert_allclose(h_xla, h_cpu, rtol=1e-10, atol=1e-12)
    _assert_trees_close(stats_xla, stats_cpu, rtol=1e-10, leaf_atol=1e-12, tree_atol=1e-12)
    _assert_trees_close(grads_xla, grads_cpu, rtol=1e-8, leaf_atol=1e-10, tree_atol=1e-12)
    # Synced: every device holds the statistics of the whole batch.
    _assert_trees_close(jax.tree.map(lambda a: a[0], stats_xla),
                        jax.tree.map(lambda a: a[1], stats_xla), rtol=1e-12, leaf_atol=0,
                        tree_atol=1e-15)


def test_kernel_sets_agree_in_float64_where_the_cpu_set_convolves_through_the_dft():
  """An ST-GCN block of 128 channels at 13 frames, where the CPU set computes the 9×1
  convolution through the Fourier transform over frames (`kernels.spectral_conv`): its
  output, every parameter's gradient and the input's equal the XLA set's in float64, in
  training mode (batch statistics)."""
  assert spectral_conv.is_cheaper(13, 9, 128, 128, np.float64)
  rng = np.random.default_rng(1)
  adjacency = graph.adjacency("ntu-rgb+d", "spatial")
  with jax.enable_x64(True):
    x = rng.normal(size=(2, 13, 25, 32))
    weights = rng.normal(size=(2, 13, 25, 128))
    results = {}
    for kernels in ("cpu", "xla"):
      block = STGCNBlock(128, kernels=kernels, init_scheme="flax")
      variables = block.init(jax.random.key(0), x, adjacency, train=False)

      def loss(params, x):
        y, _ = block.apply({**variables, "params": params}, x, adjacency, train=True,
                           mutable=["batch_stats"])
        return (y * weights).sum(), y

      results[kernels] = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(
          variables["params"], x)
  (_, y_cpu), grads_cpu = results["cpu"]
  (_, y_xla), grads_xla = results["xla"]
  assert y_cpu.dtype == np.float64
  np.testing.assert_allclose(y_xla, y_cpu, rtol=1e-10, atol=1e-12)
  _assert_trees_close(grads_xla, grads_cpu, rtol=1e-8, leaf_atol=1e-10, tree_atol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("kernels", ["cpu", "xla"])
def test_remat_gives_the_same_numbers(kernels):
  """`remat=True` recomputes each block in the backward pass: the same parameters, outputs
  and gradients, with dropout on (the recomputation draws the same masks)."""
  x, weights = _inputs()
  variables = _variables(x)
  remat_init = STGCN(**MODEL, kernels=kernels, remat=True).init(jax.random.key(0), x,
                                                                 train=False)
  assert jax.tree.structure(remat_init) == jax.tree.structure(
      {"params": variables["params"], "batch_stats": variables["batch_stats"]})
  plain = _forward_and_grads(kernels, variables, x, weights, True, dropout=0.5)
  remat = _forward_and_grads(kernels, variables, x, weights, True, dropout=0.5, remat=True)
  _assert_trees_close(remat, plain, rtol=1e-6, leaf_atol=1e-7, tree_atol=1e-7)


def test_remat_recomputes_the_blocks():
  """The backward pass of the remat model holds a `remat` (checkpoint) per block."""
  x, _ = _inputs()
  variables = _variables(x)

  def grads(remat):
    model = STGCN(**MODEL, kernels="xla", remat=remat)
    loss = lambda p: model.apply({"params": p, "batch_stats": variables["batch_stats"]}, x,
                                 train=True, mutable=["batch_stats"])[0][0].sum()
    return str(jax.make_jaxpr(jax.grad(loss))(variables["params"]))

  assert grads(remat=False).count("remat") == 0
  assert grads(remat=True).count("remat") >= 10


@pytest.mark.parametrize("platform,want", [("cpu", "cpu"), ("cuda", "xla"), ("rocm", "xla"),
                                           ("gpu", "xla"), ("tpu", "xla")])
def test_auto_resolves_by_platform(platform, want):
  assert resolve_kernels("auto", platform) == want
  assert resolve_kernels("cpu", platform) == "cpu"
  assert resolve_kernels("xla", platform) == "xla"


def test_auto_on_this_host_keeps_the_cpu_kernels():
  """`auto` on the CPU backend is the CPU set: CPU runs keep today's kernels."""
  assert jax.default_backend() == "cpu"
  assert resolve_kernels("auto") == "cpu"
  from configs import pretrain  # pylint: disable=import-outside-toplevel
  assert STGCN.from_config(pretrain.get_config("test").model).kernels == "cpu"
  assert STGCN.from_config(pretrain.get_config("test").model, platform="tpu").kernels == "xla"


def test_unknown_kernels_or_dtype_is_one_clear_error():
  from configs import pretrain  # pylint: disable=import-outside-toplevel
  config = pretrain.get_config("test")
  config.model.kernels = "gpu"
  with pytest.raises(ValueError, match=r"model.kernels is 'gpu'; use one of auto, cpu, xla"):
    STGCN.from_config(config.model)
  config.model.kernels = "auto"
  config.model.compute_dtype = "float16"
  with pytest.raises(ValueError, match=r"model.compute_dtype is 'float16'; use one of float32"):
    STGCN.from_config(config.model)
  assert KERNELS == ("auto", "cpu", "xla")


def _convolution_frames(hlo_text: str) -> list[int]:
  """Axis 1 of the output of every convolution in compiled HLO: frames for the data's
  convolutions, kernel taps (fewer) for the weight gradient's."""
  return [int(m.group(1)) for m in
          re.finditer(r"= f32\[\d+,(\d+),[\d,]+\]\{[\d,]+\} convolution\(", hlo_text)]


def test_cpu_temporal_conv_gradient_convolves_no_padding_frames():
  """A stride-1 temporal convolution's input gradient covers the input's frames only.

  Padding the input as a copy made the gradient a convolution over the padded length
  (13 + 8 frames for a 9-tap kernel at 13 frames: 8 of the 21 wasted) and a
  slice; the padding now belongs to the convolution.
  """
  frames, kernel_size = 13, 9
  x = np.ones((2, frames, 25, 8), np.float32)
  kernel = np.full((kernel_size, 1, 8, 8), 0.1, np.float32)
  loss = lambda x, k: kernels_cpu.temporal_conv(x, k, np.zeros(8, np.float32), 1).sum()
  hlo = jax.jit(jax.grad(loss, argnums=(0, 1))).lower(x, kernel).compile().as_text()
  frame_counts = _convolution_frames(hlo)
  assert frame_counts, "no convolution found in the compiled gradient"
  assert max(frame_counts) == frames, frame_counts

