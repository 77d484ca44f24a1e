"""FreST: frequency-domain spatial (FreS, over joints) and temporal (FreT, over frames)
filtering (MICA §4.2; SPEC §4).

The filter is TSLANet's `Adaptive_Spectral_Block` applied to skeleton axes: an rFFT along
the sequence, a global complex filter on the whole spectrum plus a local complex filter on
the bins whose energy (relative to the median) exceeds a learnable threshold, and the
inverse rFFT.

Complex weights are stored as float32 `(..., 2)` real/imaginary pairs: `jax.grad` of a
complex leaf is the conjugate of the descent direction and optax does not conjugate it,
so complex leaves would make SGD diverge. Pairs also map 1:1 onto TSLANet's PyTorch
parameters. The filtering itself is done on real and imaginary parts with a hand-written
gradient whose sums over the batch are matrix products (`row_sums`): autodiff would sum
complex products over the batch with XLA:CPU's slow windowed reductions.
"""
import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from freqjax.models.row_sums import column_sums


def _mask_from_energy(energy: jax.Array, threshold: jax.Array,
                      epsilon: float = 1e-6) -> jax.Array:
  """Straight-through mask from bin energies `(B, L_f, ...)` (median over axis 1)."""
  num_bins = energy.shape[1]
  # torch.median returns the lower of the two middle values for an even count.
  median = jnp.sort(energy, axis=1)[:, (num_bins - 1) // 2]
  normalized = energy / (median[:, None] + epsilon)
  hard = (normalized > threshold).astype(jnp.float32)
  return jax.lax.stop_gradient(hard - threshold) + threshold


def frequency_mask(spectrum: jax.Array, threshold: jax.Array,
                   epsilon: float = 1e-6) -> jax.Array:
  """Adaptive high-energy mask with a straight-through threshold.

  Args:
    spectrum: complex `(B, L_f, C)`: batch of sequences, frequency bins, channels.
    threshold: float32 scalar `θ`.
    epsilon: keeps the division finite for an all-zero spectrum.

  Returns:
    float32 `(B, L_f, 1)`: 1 where the bin's energy over the lower median energy of its
    sequence exceeds θ, else 0. The forward value is binary; its gradient w.r.t. θ is 1
    (`stop_gradient(1[Ê > θ] − θ) + θ`), and no gradient flows into the spectrum.
  """
  energy = jnp.sum(jnp.square(jnp.abs(spectrum)), axis=-1)  # (B, L_f)
  return _mask_from_energy(energy, threshold, epsilon)[..., None]


def _weight_shape(w: jax.Array, ndim: int) -> jax.Array:
  """`(C, 2)` or `(L_f, C, 2)` pairs broadcastable against `(B, L_f, ..., C)` parts."""
  if w.ndim == 3:  # per frequency: (L_f, 1, ..., 1, C, 2)
    w = w.reshape(w.shape[0], *([1] * (ndim - 3)), *w.shape[1:])
  return w


@jax.custom_vjp
def _modulate(re, im, mask, w_global, w_local):
  """`F ⊙ W_g + (F ⊙ M) ⊙ W_l` on real and imaginary parts `(B, L_f, ..., C)`.

  `mask (B, L_f, ..., 1)`; weights are `(C, 2)` or `(L_f, C, 2)` pairs.
  """
  return _modulate_forward(re, im, mask, w_global, w_local)[0]


def _modulate_forward(re, im, mask, w_global, w_local):
  g = _weight_shape(w_global, re.ndim)
  l = _weight_shape(w_local, re.ndim)
  w_re = g[..., 0] + mask * l[..., 0]
  w_im = g[..., 1] + mask * l[..., 1]
  return (re * w_re - im * w_im, re * w_im + im * w_re), (re, im, mask, w_global, w_local)


def _modulate_backward(residuals, cotangents):
  re, im, mask, w_global, w_local = residuals
  d_re_out, d_im_out = cotangents
  g = _weight_shape(w_global, re.ndim)
  l = _weight_shape(w_local, re.ndim)
  w_re = g[..., 0] + mask * l[..., 0]
  w_im = g[..., 1] + mask * l[..., 1]
  d_re = d_re_out * w_re + d_im_out * w_im
  d_im = d_im_out * w_re - d_re_out * w_im
  # Gradients of the effective weight (w_re, w_im) at every entry.
  d_w_re = d_re_out * re + d_im_out * im
  d_w_im = d_im_out * re - d_re_out * im
  d_mask = jnp.sum(d_w_re * l[..., 0] + d_w_im * l[..., 1], axis=-1, keepdims=True)

  def weight_sums(values):
    """Sum of `values (B, L_f, ..., C)` over all axes a weight is broadcast along."""
    if w_global.ndim == 2:
      return column_sums(values.reshape(-1, values.shape[-1]))
    per_bin = column_sums(values.reshape(values.shape[0], -1)).reshape(values.shape[1:])
    return per_bin.reshape(per_bin.shape[0], -1, per_bin.shape[-1]).sum(axis=1)

  d_global = jnp.stack([weight_sums(d_w_re), weight_sums(d_w_im)], axis=-1)
  d_local = jnp.stack([weight_sums(d_w_re * mask), weight_sums(d_w_im * mask)], axis=-1)
  return d_re, d_im, d_mask, d_global, d_local


_modulate.defvjp(_modulate_forward, _modulate_backward)


def spectral_filter(x: jax.Array, w_global: jax.Array, w_local: jax.Array,
                    threshold: jax.Array) -> jax.Array:
  """SPEC §4 steps 2–6 on a batch of sequences.

  Args:
    x: float `(B, L, C)`: batch, sequence (joints for FreS, frames for FreT), channels; or
      `(B, L, ..., C)`, where every axis between the sequence and the channels is another
      batch axis (FreT filters a `(B, T, V, C)` map in place this way).
    w_global, w_local: float32 real/imaginary pairs, `(C, 2)` (one complex weight per
      channel) or `(L//2 + 1, C, 2)` (one per frequency and channel).
    threshold: float32 scalar.

  Returns:
    float32, the shape of `x`: `irfft(F ⊙ W_g + (F ⊙ M) ⊙ W_l)` with `F = rfft(x)`
    ("ortho") along axis 1, the mask `M` from the energy over channels of each bin.
  """
  length = x.shape[1]
  spectrum = jnp.fft.rfft(x.astype(jnp.float32), axis=1, norm="ortho")
  re, im = jnp.real(spectrum), jnp.imag(spectrum)
  mask = _mask_from_energy(jnp.sum(jnp.square(re) + jnp.square(im), axis=-1), threshold)
  re, im = _modulate(re, im, mask[..., None], w_global, w_local)
  return jnp.fft.irfft(jax.lax.complex(re, im), n=length, axis=1, norm="ortho")


class SpectralFilter(nn.Module):
  """Learnable adaptive spectral filter along axis 1: `(B, L, ..., C)` → same shape.

  Attributes:
    per_frequency: one complex weight per frequency bin and channel `(L//2+1, C, 2)`
      instead of one per channel `(C, 2)` (SPEC §4 [choice]: per channel by default).
    init_std: std of the real and imaginary parts at init (TSLANet: 0.02).
  """
  per_frequency: bool = False
  init_std: float = 0.02

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    length, channels = x.shape[1], x.shape[-1]
    shape = (length // 2 + 1, channels, 2) if self.per_frequency else (channels, 2)
    init = nn.initializers.normal(self.init_std)
    w_global = self.param("w_global", init, shape)
    w_local = self.param("w_local", init, shape)
    threshold = self.param("threshold", nn.initializers.uniform(1.0), ())
    return spectral_filter(x, w_global, w_local, threshold).astype(x.dtype)


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


class LayerNorm(nn.Module):
  """`nn.LayerNorm` over the last axis (same parameters `scale`, `bias`), computed by
  `layer_norm`."""
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (features,))
    bias = self.param("bias", nn.initializers.zeros, (features,))
    return layer_norm(x, scale, bias, self.epsilon)


class FreST(nn.Module):
  """`X + FreS(X) + FreT(X)` on a feature map `(B, T, V, C)`.

  Decoupling (SPEC §4.1): FreS sees each frame as a sequence over joints `(B·T, V, C)`,
  FreT each joint as a sequence over frames (the `(B·V, T, C)` sequences, filtered in
  place along T of the map), each after its own LayerNorm.

  Attributes:
    spatial, temporal: turn FreS / FreT on or off.
    per_frequency: see `SpectralFilter`.
    layer_norm: LayerNorm before each branch ([choice]).
  """
  spatial: bool = True
  temporal: bool = True
  per_frequency: bool = False
  layer_norm: bool = True

  def _decouple(self, x: jax.Array, name: str) -> jax.Array:
    # PyTorch's LayerNorm epsilon, so imported TSLANet-style blocks agree.
    return LayerNorm(epsilon=1e-5, name=name)(x) if self.layer_norm else x

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, t, v, c = x.shape
    out = x
    if self.spatial:
      joints = self._decouple(x, "spatial_norm").reshape(b * t, v, c)
      fres = SpectralFilter(self.per_frequency, name="fres")(joints)
      out = out + fres.reshape(b, t, v, c)
    if self.temporal:
      frames = self._decouple(x, "temporal_norm")
      out = out + SpectralFilter(self.per_frequency, name="fret")(frames)
    return out
