"""ST-GCN encoder as SkeletonCLR / AimCLR configure it, with FreST blocks.

docs/method.md, "Encoder".

Layout inside the network is channels-last: a feature map is `(B, T, V, C)` with
`B = N·M` (persons folded into the batch), frames, joints, channels. Parameter names
follow the PyTorch model (`block{i}` is `st_gcn_networks.{i}`) so `freqjax.checkpoints.pytorch` can
map checkpoints one to one.
"""
import dataclasses
from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import linen as nn

from freqjax import graph
from freqjax.models import initializers
from freqjax.models.batch_norm import BatchNorm
from freqjax.models.frest import FreST
from freqjax.models.kernels import kernel_set, resolve_kernels
from freqjax.models.precision import at_least_float32, compute_dtype


class GraphConv(nn.Module):
  """ST-GCN's graph convolution: a 1×1 conv to `K·features` channels (subset-major, as
  PyTorch's `view(n, K, C, t, v)`), then the sum over subsets k and sending joints v of
  `A[k, v, w]`. The parameters are those of a `Dense` (PyTorch's `gcn.conv`). The
  arithmetic is the kernel set's (`kernels.cpu.graph_conv` reorders it for XLA:CPU), in
  the dtype of `x`.

  Attributes:
    features: output channels.
    init_scheme: `model.init` (`freqjax.models.initializers`).
    kernels: `model.kernels` (`freqjax.models.kernels`).
  """
  features: int
  init_scheme: str = "reference"
  kernels: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, adjacency: jax.Array) -> jax.Array:
    """`x (B, T, V, C_in)`, `adjacency (K, V, V)` → `(B, T, V, features)`."""
    c_in, k = x.shape[-1], adjacency.shape[0]
    kernel_init = initializers.kernel(self.init_scheme, nn.initializers.lecun_normal())
    kernel = self.param("kernel", kernel_init, (c_in, k * self.features))
    bias = self.param("bias", initializers.bias(self.init_scheme, nn.initializers.zeros),
                      (k * self.features,))
    return kernel_set(self.kernels).graph_conv(x, adjacency, kernel, bias)


class TemporalConv(nn.Module):
  """`nn.Conv(features, (kernel_size, 1), strides=(stride, 1))` with 'same' zero padding
  `(kernel_size − 1) // 2` over frames, on `(B, T, V, C)` → `(B, ceil(T / stride), V,
  features)`: the same parameters (`kernel (kernel_size, 1, C_in, features)`, `bias`),
  computed by the kernel set `kernels` (`kernels.cpu.temporal_conv` splits a strided
  convolution into phases for XLA:CPU), in the dtype of `x`.
  """
  features: int
  kernel_size: int
  stride: int = 1
  init_scheme: str = "reference"  # `model.init` (`freqjax.models.initializers`)
  kernels: str = "auto"  # `model.kernels` (`freqjax.models.kernels`)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (self.kernel_size, 1, x.shape[-1], self.features)
    kernel_init = initializers.kernel(self.init_scheme, nn.initializers.lecun_normal())
    kernel = self.param("kernel", kernel_init, shape)
    bias = self.param("bias", initializers.bias(self.init_scheme, nn.initializers.zeros),
                      (self.features,))
    return kernel_set(self.kernels).temporal_conv(x, kernel, bias, self.stride)


class STGCNBlock(nn.Module):
  """Graph conv → BN → ReLU → temporal conv (9×1, stride) → BN → Dropout, + residual, ReLU.

  Attributes:
    features: output channels.
    stride: temporal stride.
    residual: False for the first block; otherwise identity where shapes match, else a
      strided 1×1 conv + BN.
    dropout: rate after the second BN (PyTorch's `tcn.4`).
    edge_importance: learn a `(K, V, V)` weight multiplying the adjacency (init 1 in
      both initialisation schemes, as in the reference: it is not a layer).
    init_scheme: `model.init` (`freqjax.models.initializers`).
    kernels: `model.kernels` (`freqjax.models.kernels`).
  """
  features: int
  stride: int = 1
  residual: bool = True
  dropout: float = 0.0
  edge_importance: bool = True
  temporal_kernel: int = 9
  bn_axis_name: str | None = None
  bn_momentum: float = 0.1
  init_scheme: str = "reference"
  kernels: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, adjacency: jax.Array, train: bool) -> jax.Array:
    """`x (B, T, V, C_in)`, `adjacency (K, V, V)` → `(B, ceil(T/stride), V, features)`."""
    bn = lambda name: BatchNorm(self.bn_momentum, axis_name=self.bn_axis_name,
                                init_scheme=self.init_scheme, kernels=self.kernels, name=name)
    if not self.residual:
      residual = 0.0
    elif x.shape[-1] == self.features and self.stride == 1:
      residual = x
    else:
      residual = TemporalConv(self.features, 1, self.stride, init_scheme=self.init_scheme,
                              kernels=self.kernels, name="residual_conv")(x)
      residual = bn("residual_bn")(residual, train)

    if self.edge_importance:
      adjacency = adjacency * self.param("edge_importance", nn.initializers.ones,
                                         adjacency.shape)
    y = GraphConv(self.features, init_scheme=self.init_scheme, kernels=self.kernels,
                  name="gcn")(x, adjacency)

    y = nn.relu(bn("tcn_bn1")(y, train))
    y = TemporalConv(self.features, self.temporal_kernel, self.stride,
                     init_scheme=self.init_scheme, kernels=self.kernels, name="tcn_conv")(y)
    y = bn("tcn_bn2")(y, train)
    if train and self.dropout > 0:
      y = kernel_set(self.kernels).dropout(self.make_rng("dropout"), y, self.dropout)
    return nn.relu(y + residual)


class STGCN(nn.Module):
  """The skeleton encoder `f`.

  Attributes:
    hidden_channels: width of blocks 0–3 (16); blocks 4–6 have 2×, 7–8 4×.
    hidden_dim: width of the last block and of the pooled feature (256).
    layout, strategy: the skeleton graph (`freqjax.graph`).
    dropout: rate in blocks 1–9 (block 0 has none, as SkeletonCLR).
    edge_importance: learnable adjacency weights.
    frest_blocks: 0-based indices of the blocks (as PyTorch's `st_gcn_networks.{i}`)
      after which a FreST block runs; `()` is the plain ST-GCN. Default: after the last.
    frest_spatial, frest_temporal, frest_per_frequency, frest_layer_norm: see `FreST`.
    bn_axis_name: device axis over which BatchNorm statistics are synchronised.
    bn_momentum: PyTorch convention (0.1).
    init_scheme: `model.init`: `"reference"` (SkeletonCLR/AimCLR's re-initialisation) or
      `"flax"` (freqjax's earlier one), see `freqjax.models.initializers`. FreST keeps
      TSLANet's initialisation in both.
    kernels: `model.kernels`, the arithmetic (`freqjax.models.kernels`): `cpu`, `xla`, or
      `auto` (resolved for `jax.default_backend()` when traced; `from_config` resolves
      it for a given platform).
    compute_dtype: `model.compute_dtype`, `float32` or `bfloat16`: the dtype of the
      convolutions (`freqjax.models.precision`). Parameters, BatchNorm, FreST and the
      outputs stay float32 (`float32` leaves the input's dtype: float64 in float64 tests).
    remat: `model.remat`: recompute each block's activations in the backward pass
      instead of keeping them (less memory for a big batch, a second forward's compute;
      the same numbers).
  """
  hidden_channels: int = 16
  hidden_dim: int = 256
  layout: str = "ntu-rgb+d"
  strategy: str = "spatial"
  dropout: float = 0.5
  edge_importance: bool = True
  frest_blocks: Sequence[int] = (9,)
  frest_spatial: bool = True
  frest_temporal: bool = True
  frest_per_frequency: bool = False
  frest_layer_norm: bool = True
  bn_axis_name: str | None = None
  bn_momentum: float = 0.1
  init_scheme: str = "reference"
  kernels: str = "auto"
  compute_dtype: str = "float32"
  remat: bool = False

  @classmethod
  def from_config(cls, model: ml_collections.ConfigDict, bn_axis_name: str | None = None,
                  platform: str | None = None) -> "STGCN":
    """The encoder a config's `model` section describes (pretraining or resolved eval).

    Every field of `model` named like an attribute of this class sets it (`frest_blocks`
    as a tuple), `model.init` sets `init_scheme`; other fields (`mlp_dim`) and fields left
    at None keep the class's default. `model.kernels` (default `auto`) is resolved for
    `platform`, what the encoder will be compiled for (`kernels.resolve_kernels`; None:
    `jax.default_backend()`).

    Raises:
      ValueError: `model.init`, `model.kernels` or `model.compute_dtype` is not one of
        its values.
    """
    names = {f.name for f in dataclasses.fields(cls)} - {"parent", "name", "init_scheme"}
    kwargs = {name: model[name] for name in names if name in model and model[name] is not None}
    if "frest_blocks" in kwargs:
      kwargs["frest_blocks"] = tuple(kwargs["frest_blocks"])
    if model.get("init") is not None:
      initializers.check_scheme(model["init"])
      kwargs["init_scheme"] = model["init"]
    kwargs["kernels"] = resolve_kernels(kwargs.get("kernels", "auto"), platform)
    compute_dtype(kwargs.get("compute_dtype", "float32"))  # raises for an unknown name
    return cls(bn_axis_name=bn_axis_name, **kwargs)

  def block_plan(self) -> list[tuple[int, int]]:
    """`(channels, temporal stride)` of the 10 blocks."""
    c = self.hidden_channels
    return [(c, 1)] * 4 + [(2 * c, 2)] + [(2 * c, 1)] * 2 + [(4 * c, 2), (4 * c, 1),
                                                           (self.hidden_dim, 1)]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> tuple[jax.Array, jax.Array]:
    """Encodes skeleton sequences.

    Args:
      x: float32 `(N, C, T, V, M)`: batch, coordinates, frames, joints, persons.
      train: BatchNorm uses (and updates) batch statistics, dropout is active.

    Returns:
      `(h, frame_features)`: `frame_features (N, T', hidden_dim)` the last block's output
      (after FreST) averaged over joints and persons, `T' = ceil(T / 4)`; `h (N,
      hidden_dim)` their mean over frames. (Nothing downstream reads the last block's
      joints one by one, so FreST after the last block computes only their mean:
      `FreST.mean_over_joints`.)
    """
    n, c, t, v, m = x.shape
    plan = self.block_plan()
    bad = [i for i in self.frest_blocks if not 0 <= i < len(plan)]
    if bad:
      raise ValueError(f"model.frest_blocks {tuple(self.frest_blocks)}: block indices must "
                       f"be in 0..{len(plan) - 1} (0-based, as st_gcn_networks.i).")
    adjacency = graph.adjacency(self.layout, self.strategy)
    if adjacency.shape[1] != v:
      raise ValueError(f"Input has {v} joints but layout {self.layout!r} has "
                       f"{adjacency.shape[1]}; set model.layout to match the data.")
    adjacency = jnp.asarray(adjacency)

    # Data BN over V·C per person: (N, C, T, V, M) -> (N·M, T, V·C), feature v·C + c.
    x = jnp.transpose(x, (0, 4, 2, 3, 1)).reshape(n * m, t, v * c)
    x = BatchNorm(self.bn_momentum, axis_name=self.bn_axis_name, init_scheme=self.init_scheme,
                  kernels=self.kernels, name="data_bn")(x, train)
    x = x.reshape(n * m, t, v, c)
    dtype = compute_dtype(self.compute_dtype)
    if dtype is not None:
      x = x.astype(dtype)

    # Flax's remat recomputes the block's forward pass (with the same dropout mask) when
    # the backward pass needs it; `train` (argument 3, counting the module) is static.
    block = nn.remat(STGCNBlock, static_argnums=(3,)) if self.remat else STGCNBlock
    last = len(plan) - 1
    for i, (features, stride) in enumerate(plan):
      x = block(features, stride, residual=i > 0, dropout=self.dropout if i > 0 else 0.0,
                edge_importance=self.edge_importance, bn_axis_name=self.bn_axis_name,
                bn_momentum=self.bn_momentum, init_scheme=self.init_scheme,
                kernels=self.kernels, name=f"block{i}")(x, adjacency, train)
      if i in self.frest_blocks:
        # After the last block only the mean over joints is read: FreST computes just that.
        x = FreST(self.frest_spatial, self.frest_temporal, self.frest_per_frequency,
                  self.frest_layer_norm, kernels=self.kernels, mean_over_joints=i == last,
                  name=f"frest{i}")(x)

    x = at_least_float32(x)
    if last not in self.frest_blocks:  # (B, T', V, C) -> (B, T', C), the mean over joints
      x = kernel_set(self.kernels).mean_over_middle(
          x.reshape(-1, v, x.shape[-1])).reshape(n * m, -1, x.shape[-1])
    frame_features = jnp.mean(x.reshape(n, m, *x.shape[1:]), axis=1)  # over persons
    return jnp.mean(frame_features, axis=1), frame_features


def count_params(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))
