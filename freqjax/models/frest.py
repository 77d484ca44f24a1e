"""FreST: frequency-domain spatial (FreS, over joints) and temporal (FreT, over frames)
filtering (MICA paper §4.2; docs/method.md, "FreST").

The filter is TSLANet's `Adaptive_Spectral_Block` applied to skeleton axes: an rFFT along
the sequence, a global complex filter on the whole spectrum plus a local complex filter on
the bins whose energy (relative to the median) exceeds a learnable threshold, and the
inverse rFFT.

Complex weights are stored as float32 `(..., 2)` real/imaginary pairs: `jax.grad` of a
complex leaf is the conjugate of the descent direction and optax does not conjugate it,
so complex leaves would make SGD diverge. Pairs also map 1:1 onto TSLANet's PyTorch
parameters. The filtering is done on real and imaginary parts by the model's kernel set
(`freqjax.models.kernels`; `cpu` has a hand-written gradient whose sums over the batch are
matrix products). FreST runs in float32 whatever the compute dtype.
"""
import jax
import jax.numpy as jnp
from flax import linen as nn

from freqjax.models.kernels import kernel_set
from freqjax.models.precision import at_least_float32


def _mask_from_energy(energy: jax.Array, threshold: jax.Array,
                      epsilon: float = 1e-6) -> jax.Array:
  """Straight-through mask from bin energies `(B, L_f, ...)` (median over axis 1)."""
  num_bins = energy.shape[1]
  # torch.median returns the lower of the two middle values for an even count.
  median = jnp.sort(energy, axis=1)[:, (num_bins - 1) // 2]
  normalized = energy / (median[:, None] + epsilon)
  hard = (normalized > threshold).astype(energy.dtype)
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


def spectral_filter(x: jax.Array, w_global: jax.Array, w_local: jax.Array,
                    threshold: jax.Array, kernels: str = "auto") -> jax.Array:
  """The FreST filter on a batch of sequences: rFFT, adaptive mask, complex filters, irFFT.

  docs/method.md, "FreST" (from "Spectrum and energy" to "Domain inversion and output").

  Args:
    x: float `(B, L, C)`: batch, sequence (joints for FreS, frames for FreT), channels; or
      `(B, L, ..., C)`, where every axis between the sequence and the channels is another
      batch axis (FreT filters a `(B, T, V, C)` map in place this way).
    w_global, w_local: float32 real/imaginary pairs, `(C, 2)` (one complex weight per
      channel) or `(L//2 + 1, C, 2)` (one per frequency and channel).
    threshold: float32 scalar.
    kernels: `model.kernels` (`freqjax.models.kernels`).

  Returns:
    float32 (float64 for float64 `x`), the shape of `x`: `irfft(F ⊙ W_g + (F ⊙ M) ⊙ W_l)`
    with `F = rfft(x)` ("ortho") along axis 1, the mask `M` from the energy over channels
    of each bin.
  """
  length = x.shape[1]
  spectrum = jnp.fft.rfft(at_least_float32(x), axis=1, norm="ortho")
  re, im = jnp.real(spectrum), jnp.imag(spectrum)
  mask = _mask_from_energy(jnp.sum(jnp.square(re) + jnp.square(im), axis=-1), threshold)
  re, im = kernel_set(kernels).modulate(re, im, mask[..., None], w_global, w_local)
  return jnp.fft.irfft(jax.lax.complex(re, im), n=length, axis=1, norm="ortho")


def sequence_mean_of_filter(x: jax.Array, w_global: jax.Array, w_local: jax.Array,
                            threshold: jax.Array) -> jax.Array:
  """`mean(spectral_filter(x, ...), axis=1)`, computed from the zero-frequency bin alone.

  The mean over a sequence of the inverse transform is the real part of its bin 0 over
  √L, and bin 0 of the filtered spectrum is `F_0·(W_g + M_0·W_l)` with `F_0 = √L·mean(x)`
  real. So the mean is `mean(x)·(Re W_g[0] + M_0·Re W_l[0])`: the other bins enter only
  through the mask `M_0` (bin 0's energy against the median), which has no gradient but
  θ's. One forward transform, for the energies; no inverse transform, none in the
  backward pass.

  Args:
    x: float `(B, L, ..., C)`; w_global, w_local, threshold: as `spectral_filter`.

  Returns:
    float32 (float64 for float64 `x`) `(B, ..., C)`.
  """
  x = at_least_float32(x)
  spectrum = jnp.fft.rfft(jax.lax.stop_gradient(x), axis=1, norm="ortho")
  energy = jnp.sum(jnp.square(jnp.real(spectrum)) + jnp.square(jnp.imag(spectrum)), axis=-1)
  bin0_mask = _mask_from_energy(energy, threshold)[:, 0, ..., None]  # (B, ..., 1)
  first = lambda w: w[0] if w.ndim == 3 else w  # the weights of bin 0, (C, 2)
  return jnp.mean(x, axis=1) * (first(w_global)[:, 0] + bin0_mask * first(w_local)[:, 0])


def row_mean_of_filter(x: jax.Array, w_global: jax.Array, w_local: jax.Array,
                       threshold: jax.Array) -> jax.Array:
  """`spectral_filter(x, ...)` averaged over the axes between the sequence and the
  channels: `(B, L, R..., C)` → `(B, L, C)`.

  The filter is linear in the spectrum, so the mean over rows commutes with the inverse
  transform: `mean(F ⊙ (W_g + M ⊙ W_l)) = mean(F) ⊙ W_g + mean(M ⊙ F) ⊙ W_l`. One inverse
  transform of a `(B, L_f, C)` spectrum instead of one per row.

  Args:
    x: float `(B, L, R..., C)`; w_global, w_local, threshold: as `spectral_filter`.

  Returns:
    float32 (float64 for float64 `x`) `(B, L, C)`.
  """
  length = x.shape[1]
  spectrum = jnp.fft.rfft(at_least_float32(x), axis=1, norm="ortho")
  re, im = jnp.real(spectrum), jnp.imag(spectrum)
  mask = _mask_from_energy(jnp.sum(jnp.square(re) + jnp.square(im), axis=-1), threshold)
  rows = tuple(range(2, x.ndim - 1))
  mean = lambda a: jnp.mean(a, axis=rows)
  mask = mask[..., None]
  all_re, all_im, masked_re, masked_im = mean(re), mean(im), mean(mask * re), mean(mask * im)
  # (C,) or (L_f, C): broadcast against the (B, L_f, C) means.
  g_re, g_im, l_re, l_im = w_global[..., 0], w_global[..., 1], w_local[..., 0], w_local[..., 1]
  out_re = all_re * g_re - all_im * g_im + masked_re * l_re - masked_im * l_im
  out_im = all_re * g_im + all_im * g_re + masked_re * l_im + masked_im * l_re
  return jnp.fft.irfft(jax.lax.complex(out_re, out_im), n=length, axis=1, norm="ortho")


class SpectralFilter(nn.Module):
  """Learnable adaptive spectral filter along axis 1: `(B, L, ..., C)` → same shape, or a
  mean of it (`mean_over`).

  Attributes:
    per_frequency: one complex weight per frequency bin and channel `(L//2+1, C, 2)`
      instead of one per channel `(C, 2)` (an open choice, per channel by default:
      docs/method.md, "Complex filters").
    init_std: std of the real and imaginary parts at init (TSLANet: 0.02).
    kernels: `model.kernels` (`freqjax.models.kernels`).
    mean_over: None: the filtered sequences; `"sequence"`: their mean over axis 1, `(B,
      ..., C)` (`sequence_mean_of_filter`); `"rows"`: their mean over the axes between
      the sequence and the channels, `(B, L, C)` (`row_mean_of_filter`). The same
      numbers as the mean of the full output, up to float rounding, at a fraction of
      the cost.
  """
  per_frequency: bool = False
  init_std: float = 0.02
  kernels: str = "auto"
  mean_over: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    length, channels = x.shape[1], x.shape[-1]
    shape = (length // 2 + 1, channels, 2) if self.per_frequency else (channels, 2)
    init = nn.initializers.normal(self.init_std)
    w_global = self.param("w_global", init, shape)
    w_local = self.param("w_local", init, shape)
    threshold = self.param("threshold", nn.initializers.uniform(1.0), ())
    if self.mean_over not in (None, "sequence", "rows"):
      raise ValueError(f"SpectralFilter.mean_over is {self.mean_over!r}; use None, "
                       "'sequence' or 'rows'.")
    if self.mean_over == "sequence":
      y = sequence_mean_of_filter(x, w_global, w_local, threshold)
    elif self.mean_over == "rows":
      y = row_mean_of_filter(x, w_global, w_local, threshold)
    else:
      y = spectral_filter(x, w_global, w_local, threshold, self.kernels)
    return y.astype(x.dtype)


class LayerNorm(nn.Module):
  """`nn.LayerNorm` over the last axis (same parameters `scale`, `bias`; biased variance,
  two passes), computed by the kernel set `kernels` (`freqjax.models.kernels`)."""
  epsilon: float = 1e-5
  kernels: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (features,))
    bias = self.param("bias", nn.initializers.zeros, (features,))
    return kernel_set(self.kernels).layer_norm(x, scale, bias, self.epsilon)


class FreST(nn.Module):
  """`X + FreS(X) + FreT(X)` on a feature map `(B, T, V, C)`.

  Decoupling (docs/method.md, "FreST"): FreS sees each frame as a sequence over joints
  `(B·T, V, C)`, FreT each joint as a sequence over frames (the `(B·V, T, C)` sequences,
  filtered in place along T of the map), each after its own LayerNorm.

  Attributes:
    spatial, temporal: turn FreS / FreT on or off.
    per_frequency: see `SpectralFilter`.
    layer_norm: LayerNorm before each branch ([choice]).
    kernels: `model.kernels` (`freqjax.models.kernels`).
    mean_over_joints: return the output's mean over joints `(B, T, C)`, all that the
      encoder's pooling and the harmonizer read of the last block: FreS then needs only
      its zero-frequency bin and FreT one inverse transform per frame sequence instead
      of one per joint (`SpectralFilter.mean_over`). The same parameters and numbers.

  Computes in float32 (or float64 for float64 inputs); the output has the input's dtype.
  """
  spatial: bool = True
  temporal: bool = True
  per_frequency: bool = False
  layer_norm: bool = True
  kernels: str = "auto"
  mean_over_joints: bool = False

  def _decouple(self, x: jax.Array, name: str) -> jax.Array:
    # PyTorch's LayerNorm epsilon, so imported TSLANet-style blocks agree.
    return (LayerNorm(epsilon=1e-5, kernels=self.kernels, name=name)(x) if self.layer_norm
            else x)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, t, v, c = x.shape
    dtype, x = x.dtype, at_least_float32(x)
    pooled = self.mean_over_joints
    out = jnp.mean(x, axis=2) if pooled else x
    if self.spatial:
      joints = self._decouple(x, "spatial_norm").reshape(b * t, v, c)
      fres = SpectralFilter(self.per_frequency, kernels=self.kernels,
                            mean_over="sequence" if pooled else None, name="fres")(joints)
      out = out + fres.reshape(out.shape)
    if self.temporal:
      frames = self._decouple(x, "temporal_norm")
      out = out + SpectralFilter(self.per_frequency, kernels=self.kernels,
                                 mean_over="rows" if pooled else None, name="fret")(frames)
    return out.astype(dtype)
