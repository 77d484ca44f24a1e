"""The encoder's arithmetic rewritten for XLA:CPU (`model.kernels = "cpu"`).

Same results as `kernels.xla` up to float rounding (dropout: the same distribution), in a
form XLA:CPU runs several times faster:
- sums over the rows of channels-last maps are matrix products with a vector of ones at
  `Precision.HIGHEST` (`column_sums`): XLA:CPU turns a large `jnp.sum` over the leading
  axes of a `(B, T, V, C)` map into a windowed reduction that strides over C. Batch
  statistics, the gradients of every bias, scale and pooled mean, and FreST's filter
  gradients are such sums, so BatchNorm, LayerNorm, bias addition and FreST's filtering
  have hand-written backward passes that use them;
- narrow graph convolutions fold adjacency and kernel into one dense matrix;
- strided temporal convolutions are sums of stride-1 convolutions, one per input phase;
- wide stride-1 temporal convolutions go through the discrete Fourier transform over
  frames (`kernels.spectral_conv`), where that at least halves the multiplications;
- dropout draws 8 or 16 random bits per entry instead of 32.
"""
import functools

import jax
import jax.numpy as jnp

from freqjax.models.kernels import spectral_conv
from freqjax.models.kernels.common import EXACT, broadcastable, effective_filter


# Below this many weights `V·C_in × V·features`, the graph convolution runs as one dense
# matrix product (see `graph_conv`): on XLA:CPU it beats the factored form up to ~32
# channels.
_DENSE_GRAPH_CONV_MAX_WEIGHTS = 800 * 800


def column_sums(x: jax.Array) -> jax.Array:
  """`(rows, C)` → `(C,)`: the sum over rows, accumulated in float32 (or wider)."""
  return jnp.dot(jnp.ones((x.shape[0],), x.dtype), x, precision=EXACT,
                 preferred_element_type=jnp.promote_types(x.dtype, jnp.float32))


def mean_over_middle(x: jax.Array) -> jax.Array:
  """`(N, R, C)` → `(N, C)`: the mean over the R rows of each of the N groups."""
  ones = jnp.ones(x.shape[:2], x.dtype)
  return jnp.einsum("nrc,nr->nc", x, ones, precision=EXACT) / x.shape[1]


@jax.custom_vjp
def add_bias(x: jax.Array, bias: jax.Array) -> jax.Array:
  """`x + bias` in the dtype of `x`, `bias (C,)` broadcast over the leading axes of `x`;
  its gradient (the sum of the output gradient over those axes) is a `column_sums`."""
  return x + bias.astype(x.dtype)


def _add_bias_forward(x, bias):
  return add_bias(x, bias), bias


def _add_bias_backward(bias, dy):
  d_bias = column_sums(dy.reshape(-1, bias.size)).reshape(bias.shape).astype(bias.dtype)
  return dy, d_bias


add_bias.defvjp(_add_bias_forward, _add_bias_backward)


def _mean(x: jax.Array, axis_name: str | None) -> jax.Array:
  """Mean over the rows of `x (rows, C)` on this device, then over the devices of `axis_name`."""
  mean = column_sums(x) / x.shape[0]
  return mean if axis_name is None else jax.lax.pmean(mean, axis_name)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm_train(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                     axis_name: str | None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Training-mode batch norm of `x (rows, C)` with the statistics of the global batch.

  Returns `(y, mean, var)`: `y = (x − mean) / sqrt(var + ε) · scale + bias`, and the biased
  batch mean and variance `(C,)` over the rows of every device of `axis_name` (two
  passes, mean then squared deviations, as PyTorch: `E[x²] − E[x]²` loses digits on raw
  coordinates whose mean is large against their spread).
  """
  return _batch_norm_forward(x, scale, bias, epsilon, axis_name)[0]


def _batch_norm_forward(x, scale, bias, epsilon, axis_name):
  mean = _mean(x, axis_name)
  centered = x - mean
  var = _mean(jnp.square(centered), axis_name)
  inv_std = jax.lax.rsqrt(var + epsilon)
  y = centered * inv_std * scale + bias
  return (y, mean, var), (centered, inv_std, scale)


def _batch_norm_backward(epsilon, axis_name, residuals, cotangents):
  """The gradient autodiff gives, with every sum over rows a `column_sums`.

  With `x̂ = (x − μ)·r` and `g = dy·scale`, the input gradient is
  `r·(g − mean(g) − x̂·mean(g·x̂))` plus the terms of the `mean`/`var` outputs, the means
  taken over the global batch (`pmean` of the per-device means: the transpose of the
  forward's `pmean`); `scale` and `bias` get this device's sums, as autodiff does.
  """
  del epsilon
  centered, inv_std, scale = residuals
  dy, d_mean, d_var = cotangents
  rows = centered.shape[0]
  normalized = centered * inv_std
  d_bias = column_sums(dy)
  d_scale = column_sums(dy * normalized)
  # mean(g) = scale·Σdy / rows and mean(g·x̂) = scale·Σ(dy·x̂) / rows: no further sums.
  means = (scale * d_bias / rows, scale * d_scale / rows, d_mean, d_var)
  if axis_name is not None:
    means = jax.lax.pmean(means, axis_name)
  mean_g, mean_gx, d_mean, d_var = means
  dx = (inv_std * (dy * scale - mean_g - normalized * mean_gx)
        + d_mean / rows + centered * (2 * d_var / rows))
  return dx, d_scale, d_bias


batch_norm_train.defvjp(_batch_norm_forward, _batch_norm_backward)


def _row_means(x: jax.Array) -> jax.Array:
  """`(..., C)` → `(..., 1)`: the mean over channels."""
  return jnp.mean(x, axis=-1, keepdims=True)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def layer_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float) -> jax.Array:
  """`(x − mean) / sqrt(var + ε) · scale + bias` over the last axis (biased variance, two
  passes); the gradients of `scale` and `bias` are sums over rows (`column_sums`)."""
  return _layer_norm_forward(x, scale, bias, epsilon)[0]


def _layer_norm_forward(x, scale, bias, epsilon):
  centered = x - _row_means(x)
  inv_std = jax.lax.rsqrt(_row_means(jnp.square(centered)) + epsilon)
  normalized = centered * inv_std
  return normalized * scale + bias, (normalized, inv_std, scale)


def _layer_norm_backward(epsilon, residuals, dy):
  del epsilon
  normalized, inv_std, scale = residuals
  g = dy * scale
  dx = inv_std * (g - _row_means(g) - normalized * _row_means(g * normalized))
  rows = lambda a: a.reshape(-1, a.shape[-1])
  return dx, column_sums(rows(dy * normalized)), column_sums(rows(dy))


layer_norm.defvjp(_layer_norm_forward, _layer_norm_backward)


@jax.custom_vjp
def modulate(re, im, mask, w_global, w_local):
  """`F ⊙ W_g + (F ⊙ M) ⊙ W_l` on real and imaginary parts `(B, L_f, ..., C)`; `mask
  (B, L_f, ..., 1)`; weights `(C, 2)` or `(L_f, C, 2)` real/imaginary pairs. The
  weights' gradients (sums over the batch) are `column_sums`."""
  return _modulate_forward(re, im, mask, w_global, w_local)[0]


def _modulate_forward(re, im, mask, w_global, w_local):
  w_re, w_im = effective_filter(mask, w_global, w_local, re.ndim)
  return (re * w_re - im * w_im, re * w_im + im * w_re), (re, im, mask, w_global, w_local)


def _modulate_backward(residuals, cotangents):
  re, im, mask, w_global, w_local = residuals
  d_re_out, d_im_out = cotangents
  w_re, w_im = effective_filter(mask, w_global, w_local, re.ndim)
  local = broadcastable(w_local, re.ndim)
  d_re = d_re_out * w_re + d_im_out * w_im
  d_im = d_im_out * w_re - d_re_out * w_im
  # Gradients of the effective weight (w_re, w_im) at every entry.
  d_w_re = d_re_out * re + d_im_out * im
  d_w_im = d_im_out * re - d_re_out * im
  d_mask = jnp.sum(d_w_re * local[..., 0] + d_w_im * local[..., 1], axis=-1, keepdims=True)

  def weight_sums(values):
    """Sum of `values (B, L_f, ..., C)` over all axes a weight is broadcast along."""
    if w_global.ndim == 2:
      return column_sums(values.reshape(-1, values.shape[-1]))
    per_bin = column_sums(values.reshape(values.shape[0], -1)).reshape(values.shape[1:])
    return per_bin.reshape(per_bin.shape[0], -1, per_bin.shape[-1]).sum(axis=1)

  d_global = jnp.stack([weight_sums(d_w_re), weight_sums(d_w_im)], axis=-1)
  d_local = jnp.stack([weight_sums(d_w_re * mask), weight_sums(d_w_im * mask)], axis=-1)
  return d_re, d_im, d_mask, d_global, d_local


modulate.defvjp(_modulate_forward, _modulate_backward)


def graph_conv(x: jax.Array, adjacency: jax.Array, kernel: jax.Array,
               bias: jax.Array) -> jax.Array:
  """ST-GCN's graph convolution (see `kernels.xla.graph_conv` for the definition), with
  the arithmetic reordered for XLA:CPU (the same result up to float rounding):

  - narrow layers fold adjacency and kernel into one `(V·C_in, V·features)` matrix
    `M[(v, i), (w, o)] = Σ_k A[k, v, w] W[i, k, o]` and do one product per frame: more
    multiplications, but one large matrix product instead of several small ones and
    their layout changes;
  - wide layers contract the adjacency first, with the input (never wider than the
    output), then one `(B·T·V, K·C_in) @ (K·C_in, features)` product does the 1×1 conv
    and the sum over subsets. Contracting the joint axis of the `K·features`-wide
    intermediate, as PyTorch does, makes XLA:CPU transpose it, which costs more than the
    products.
  """
  b, t, v, c_in = x.shape
  k = adjacency.shape[0]
  features = kernel.shape[1] // k
  kernel = kernel.reshape(c_in, k, features)
  # The 1x1 conv's bias carried through the adjacency: sum_k sum_v A[k, v, w] b[k, c].
  bias = jnp.einsum("kvw,kc->wc", adjacency, bias.reshape(k, features))
  if (v * c_in) * (v * features) <= _DENSE_GRAPH_CONV_MAX_WEIGHTS:
    dense = jnp.einsum("kvw,iko->viwo", adjacency, kernel).reshape(v * c_in, -1)
    y = x.reshape(b * t, v * c_in) @ dense.astype(x.dtype)
    return add_bias(y.reshape(b, t, v, features), bias)
  # Rows (w, k): each output joint's K·C_in inputs are then contiguous for the 1x1 conv.
  gather = adjacency.transpose(2, 0, 1).reshape(v * k, v).astype(x.dtype)
  mixed = jnp.einsum("av,nvi->nai", gather, x.reshape(b * t, v, c_in))
  kernel = kernel.transpose(1, 0, 2).reshape(k * c_in, features).astype(x.dtype)
  return add_bias(mixed.reshape(b, t, v, k * c_in) @ kernel, bias)


def temporal_conv(x: jax.Array, kernel: jax.Array, bias: jax.Array,
                  stride: int) -> jax.Array:
  """The temporal convolution of `kernels.xla.temporal_conv`, a strided one computed as
  the sum of `stride` stride-1 convolutions, one per input phase (`x[r::stride]` with the
  taps that reach it): the same products as the strided convolution, but XLA:CPU
  differentiates a strided convolution into a dilated one several times slower, and
  computing every frame and subsampling doubles the work. A 1×1 kernel is a matmul. A
  stride-1 convolution wide enough that the Fourier form does at most half the
  multiplications (`spectral_conv.is_cheaper`: block 10's 256 channels at 13 frames) is
  computed in that form.
  """
  kernel = kernel.astype(x.dtype)
  kernel_size = kernel.shape[0]
  if kernel_size == 1:
    return add_bias(x[:, ::stride] @ kernel[0, 0], bias)
  if stride == 1 and spectral_conv.is_cheaper(x.shape[1], kernel_size, x.shape[-1],
                                              kernel.shape[-1], x.dtype):
    return add_bias(spectral_conv.spectral_temporal_conv(x, kernel), bias)
  pad, s = (kernel_size - 1) // 2, stride
  frames_out = -(-x.shape[1] // s)
  y = 0.0
  for phase in range(s):
    # Output frame t reads input frame s·t + k − pad = s·(t + j) + phase for the taps
    # k = pad + phase + s·j: a stride-1 convolution of x[phase::s] with those taps.
    taps = [k for k in range(kernel_size) if (k - pad - phase) % s == 0]
    if not taps:
      continue
    first = (taps[0] - pad - phase) // s  # the smallest j (≤ 0)
    part = x[:, phase::s]
    padding = (-first, max(frames_out - part.shape[1] + first + len(taps) - 1, 0))
    if s == 1:
      # Zero frames as the convolution's own padding: the gradient of a padded copy is a
      # convolution over the padded length (21 frames for 13 at block 10) and a slice.
      padding = (padding, (0, 0))
    else:
      # A padded copy: with padding inside, XLA:CPU computes the weight gradient of the
      # unevenly padded phases as a kernel-reversed convolution more than 10× slower.
      part = jnp.pad(part, ((0, 0), padding, (0, 0), (0, 0)))
      padding = "VALID"
    y = y + jax.lax.conv_general_dilated(
        part, kernel[taps[0]::s], (1, 1), padding,
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
