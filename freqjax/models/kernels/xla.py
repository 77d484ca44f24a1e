"""The encoder's arithmetic in its plain form (`model.kernels = "xla"`, GPUs and TPUs).

Each function is the definition of the operation written with ordinary `jax.numpy` /
`jax.lax` ops and differentiated by autodiff: reductions for batch statistics and bias
gradients, the graph convolution in PyTorch's order, strided convolutions, and
`jax.random.bernoulli` dropout. These are the forms XLA's GPU and TPU compilers fuse and
tile well; `kernels.cpu` computes the same numbers in forms that suit XLA:CPU.
"""
import jax
import jax.numpy as jnp

from freqjax.models.kernels.common import effective_filter


def mean_over_middle(x: jax.Array) -> jax.Array:
  """`(N, R, C)` → `(N, C)`: the mean over the R rows of each of the N groups."""
  return jnp.mean(x, axis=1)


def add_bias(x: jax.Array, bias: jax.Array) -> jax.Array:
  """`x + bias` in the dtype of `x`, `bias (C,)` broadcast over the leading axes of `x`."""
  return x + bias.astype(x.dtype)


def _mean(x: jax.Array, axis_name: str | None) -> jax.Array:
  """Mean over the rows of `x (rows, C)` on this device, then over the devices of `axis_name`."""
  mean = jnp.mean(x, axis=0)
  return mean if axis_name is None else jax.lax.pmean(mean, axis_name)


def batch_norm_train(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                     axis_name: str | None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Training-mode batch norm of `x (rows, C)` with the statistics of the global batch.

  Returns `(y, mean, var)`: `y = (x − mean) / sqrt(var + ε) · scale + bias`, and the biased
  batch mean and variance `(C,)` over the rows of every device of `axis_name` (two
  passes, mean then squared deviations, as PyTorch).
  """
  mean = _mean(x, axis_name)
  centered = x - mean
  var = _mean(jnp.square(centered), axis_name)
  return centered * jax.lax.rsqrt(var + epsilon) * scale + bias, mean, var


def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float) -> jax.Array:
  """`(x − mean) / sqrt(var + ε) · scale + bias` over the last axis (biased variance, two
  passes)."""
  centered = x - jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.mean(jnp.square(centered), axis=-1, keepdims=True)
  return centered * jax.lax.rsqrt(var + epsilon) * scale + bias


def modulate(re, im, mask, w_global, w_local):
  """`F ⊙ W_g + (F ⊙ M) ⊙ W_l` on real and imaginary parts `(B, L_f, ..., C)`; `mask
  (B, L_f, ..., 1)`; weights `(C, 2)` or `(L_f, C, 2)` real/imaginary pairs."""
  w_re, w_im = effective_filter(mask, w_global, w_local, re.ndim)
  return re * w_re - im * w_im, re * w_im + im * w_re


def graph_conv(x: jax.Array, adjacency: jax.Array, kernel: jax.Array,
               bias: jax.Array) -> jax.Array:
  """ST-GCN's graph convolution, in PyTorch's order: a 1×1 conv to `K·features` channels
  (subset-major, as PyTorch's `view(n, K, C, t, v)`), then the sum over subsets k and
  sending joints v of `A[k, v, w]`.

  Args:
    x: `(B, T, V, C_in)`, in the compute dtype.
    adjacency: `(K, V, V)`.
    kernel: `(C_in, K·features)`, the 1×1 conv (a `Dense`'s kernel).
    bias: `(K·features,)`.

  Returns:
    `(B, T, V, features)` in the dtype of `x`.
  """
  k = adjacency.shape[0]
  y = add_bias(x @ kernel.astype(x.dtype), bias)
  y = y.reshape(*x.shape[:3], k, kernel.shape[1] // k)
  return jnp.einsum("btvkf,kvw->btwf", y, adjacency.astype(x.dtype))


def temporal_conv(x: jax.Array, kernel: jax.Array, bias: jax.Array,
                  stride: int) -> jax.Array:
  """`nn.Conv(features, (kernel_size, 1), strides=(stride, 1))` with 'same' zero padding
  `(kernel_size − 1) // 2` over frames.

  Args:
    x: `(B, T, V, C_in)`, in the compute dtype.
    kernel: `(kernel_size, 1, C_in, features)`.
    bias: `(features,)`.
    stride: temporal stride.

  Returns:
    `(B, ceil(T / stride), V, features)` in the dtype of `x` (odd kernel sizes).
  """
  pad = (kernel.shape[0] - 1) // 2
  y = jax.lax.conv_general_dilated(x, kernel.astype(x.dtype), (stride, 1),
                                   ((pad, pad), (0, 0)),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  return add_bias(y, bias)


def dropout(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
  """Inverted dropout: zeroes each entry with probability `rate`, scales the rest by
  `1 / (1 − rate)` (`jax.random.bernoulli`)."""
  if rate >= 1.0:
    return jnp.zeros_like(x)
  keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
  return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))
