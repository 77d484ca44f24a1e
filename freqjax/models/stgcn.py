"""ST-GCN encoder as SkeletonCLR / AimCLR configure it (SPEC §3), with FreST blocks.

Layout inside the network is channels-last: a feature map is `(B, T, V, C)` with
`B = N·M` (persons folded into the batch), frames, joints, channels. Parameter names
follow the PyTorch model (`block{i}` is `st_gcn_networks.{i}`) so `freqjax.checkpoints.pytorch` can
map checkpoints one to one.
"""
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from freqjax import graph
from freqjax.models.batch_norm import BatchNorm
from freqjax.models.frest import FreST
from freqjax.models.row_sums import add_bias, mean_over_middle


# Below this many weights `V·C_in × V·features`, the graph convolution runs as one dense
# matrix product (see GraphConv): on XLA:CPU it beats the factored form up to ~32 channels.
_DENSE_GRAPH_CONV_MAX_WEIGHTS = 800 * 800


class GraphConv(nn.Module):
  """ST-GCN's graph convolution: a 1×1 conv to `K·features` channels (subset-major, as
  PyTorch's `view(n, K, C, t, v)`), then the sum over subsets k and sending joints v of
  `A[k, v, w]`. The parameters are those of a `Dense` (PyTorch's `gcn.conv`).

  The arithmetic is reordered for speed (the same result up to float32 rounding):
  - narrow layers fold adjacency and kernel into one `(V·C_in, V·features)` matrix
    `M[(v, i), (w, o)] = Σ_k A[k, v, w] W[i, k, o]` and do one product per frame: more
    multiplications, but one large matrix product instead of several small ones and
    their layout changes;
  - wide layers contract the adjacency first, with the input (never wider than the
    output), then one `(B·T·V, K·C_in) @ (K·C_in, features)` product does the 1×1 conv
    and the sum over subsets. Contracting the joint axis of the `K·features`-wide
    intermediate, as PyTorch does, makes XLA:CPU transpose it, which costs more than the
    products.

  Attributes:
    features: output channels.
  """
  features: int

  @nn.compact
  def __call__(self, x: jax.Array, adjacency: jax.Array) -> jax.Array:
    """`x (B, T, V, C_in)`, `adjacency (K, V, V)` → `(B, T, V, features)`."""
    b, t, v, c_in = x.shape
    k = adjacency.shape[0]
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (c_in, k * self.features))
    bias = self.param("bias", nn.initializers.zeros, (k * self.features,))
    kernel = kernel.reshape(c_in, k, self.features)
    # The 1x1 conv's bias carried through the adjacency: sum_k sum_v A[k, v, w] b[k, c].
    bias = jnp.einsum("kvw,kc->wc", adjacency, bias.reshape(k, self.features))
    if (v * c_in) * (v * self.features) <= _DENSE_GRAPH_CONV_MAX_WEIGHTS:
      dense = jnp.einsum("kvw,iko->viwo", adjacency, kernel).reshape(v * c_in, -1)
      y = x.reshape(b * t, v * c_in) @ dense
      return add_bias(y.reshape(b, t, v, self.features), bias)
    # Rows (w, k): each output joint's K·C_in inputs are then contiguous for the 1x1 conv.
    gather = adjacency.transpose(2, 0, 1).reshape(v * k, v)
    mixed = jnp.einsum("av,nvi->nai", gather, x.reshape(b * t, v, c_in))
    kernel = kernel.transpose(1, 0, 2).reshape(k * c_in, self.features)
    return add_bias(mixed.reshape(b, t, v, k * c_in) @ kernel, bias)


class TemporalConv(nn.Module):
  """`nn.Conv(features, (kernel_size, 1), strides=(stride, 1))` with 'same' zero padding
  `(kernel_size − 1) // 2` over frames, on `(B, T, V, C)` → `(B, ceil(T / stride), V,
  features)`: the same parameters (`kernel (kernel_size, 1, C_in, features)`, `bias`), with
  the bias gradient as a matrix product (`row_sums`). A 1×1 kernel is a matmul.

  A strided convolution is computed as the sum of `stride` stride-1 convolutions, one per
  input phase (`x[r::stride]` with the taps that reach it): the same products as the
  strided convolution, but XLA:CPU differentiates a strided convolution into a dilated one
  several times slower, and computing every frame and subsampling doubles the work.
  """
  features: int
  kernel_size: int
  stride: int = 1

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (self.kernel_size, 1, x.shape[-1], self.features)
    kernel = self.param("kernel", nn.initializers.lecun_normal(), shape)
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    if self.kernel_size == 1:
      return add_bias(x[:, ::self.stride] @ kernel[0, 0], bias)
    pad, s = (self.kernel_size - 1) // 2, self.stride
    frames_out = -(-x.shape[1] // s)
    y = 0.0
    for phase in range(s):
      # Output frame t reads input frame s·t + k − pad = s·(t + j) + phase for the taps
      # k = pad + phase + s·j: a stride-1 convolution of x[phase::s] with those taps.
      taps = [k for k in range(self.kernel_size) if (k - pad - phase) % s == 0]
      if not taps:
        continue
      first = (taps[0] - pad - phase) // s  # the smallest j (≤ 0)
      part = x[:, phase::s]
      right = frames_out - part.shape[1] + first + len(taps) - 1
      part = jnp.pad(part, ((0, 0), (-first, max(right, 0)), (0, 0), (0, 0)))
      y = y + jax.lax.conv_general_dilated(
          part, kernel[taps[0]::s], (1, 1), "VALID",
          dimension_numbers=("NHWC", "HWIO", "NHWC"))[:, :frames_out]
    return add_bias(y, bias)


def dropout(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
  """Inverted dropout: zeroes each entry with probability `rate`, scales the rest by
  `1 / (1 − rate)`.

  Each entry draws 8 random bits when `rate` is a multiple of 1/256 (0.5 is), else 16
  (`rate` rounded to a multiple of 2⁻¹⁶), instead of `jax.random.bernoulli`'s 32: the
  threefry bits dominate the cost of dropout on CPU.
  """
  if rate >= 1.0:
    return jnp.zeros_like(x)
  bits = 8 if float(rate * 256).is_integer() else 16
  per_word = 32 // bits
  words = jax.random.bits(key, (-(-x.size // per_word),), jnp.uint32)
  draws = jax.lax.bitcast_convert_type(words, jnp.dtype(f"uint{bits}")).reshape(-1)
  keep = draws[:x.size].reshape(x.shape) >= round(rate * 2**bits)
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))


class STGCNBlock(nn.Module):
  """Graph conv → BN → ReLU → temporal conv (9×1, stride) → BN → Dropout, + residual, ReLU.

  Attributes:
    features: output channels.
    stride: temporal stride.
    residual: False for the first block; otherwise identity where shapes match, else a
      strided 1×1 conv + BN.
    dropout: rate after the second BN (PyTorch's `tcn.4`).
    edge_importance: learn a `(K, V, V)` weight multiplying the adjacency (init 1).
  """
  features: int
  stride: int = 1
  residual: bool = True
  dropout: float = 0.0
  edge_importance: bool = True
  temporal_kernel: int = 9
  bn_axis_name: str | None = None
  bn_momentum: float = 0.1

  @nn.compact
  def __call__(self, x: jax.Array, adjacency: jax.Array, train: bool) -> jax.Array:
    """`x (B, T, V, C_in)`, `adjacency (K, V, V)` → `(B, ceil(T/stride), V, features)`."""
    bn = lambda name: BatchNorm(self.bn_momentum, axis_name=self.bn_axis_name, name=name)
    if not self.residual:
      residual = 0.0
    elif x.shape[-1] == self.features and self.stride == 1:
      residual = x
    else:
      residual = TemporalConv(self.features, 1, self.stride, name="residual_conv")(x)
      residual = bn("residual_bn")(residual, train)

    if self.edge_importance:
      adjacency = adjacency * self.param("edge_importance", nn.initializers.ones,
                                         adjacency.shape)
    y = GraphConv(self.features, name="gcn")(x, adjacency)

    y = nn.relu(bn("tcn_bn1")(y, train))
    y = TemporalConv(self.features, self.temporal_kernel, self.stride, name="tcn_conv")(y)
    y = bn("tcn_bn2")(y, train)
    if train and self.dropout > 0:
      y = dropout(self.make_rng("dropout"), y, self.dropout)
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
      `(h, feature_map)`: `h (N, hidden_dim)` pooled over frames and joints, then
      averaged over persons; `feature_map (N, M, T', V, hidden_dim)` the last block's
      output (after FreST), `T' = ceil(T / 4)`.
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
    x = BatchNorm(self.bn_momentum, axis_name=self.bn_axis_name, name="data_bn")(x, train)
    x = x.reshape(n * m, t, v, c)

    for i, (features, stride) in enumerate(plan):
      x = STGCNBlock(features, stride, residual=i > 0, dropout=self.dropout if i > 0 else 0.0,
                     edge_importance=self.edge_importance, bn_axis_name=self.bn_axis_name,
                     bn_momentum=self.bn_momentum, name=f"block{i}")(x, adjacency, train)
      if i in self.frest_blocks:
        x = FreST(self.frest_spatial, self.frest_temporal, self.frest_per_frequency,
                  self.frest_layer_norm, name=f"frest{i}")(x)

    feature_map = x.reshape(n, m, *x.shape[1:])
    h = mean_over_middle(x.reshape(n, -1, x.shape[-1]))  # over persons, frames and joints
    return h, feature_map


def count_params(params) -> int:
  return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))
