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


class SpectralFilter(nn.Module):
  """Learnable adaptive spectral filter along axis 1: `(B, L, ..., C)` → same shape.

  Attributes:
    per_frequency: one complex weight per frequency bin and channel `(L//2+1, C, 2)`
      instead of one per channel `(C, 2)` (an open choice, per channel by default:
      docs/method.md, "Complex filters").
    init_std: std of the real and imaginary parts at init (TSLANet: 0.02).
    kernels: `model.kernels` (`freqjax.models.kernels`).
  """
  per_frequency: bool = False
  init_std: float = 0.02
  kernels: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    length, channels = x.shape[1], x.shape[-1]
    shape = (length // 2 + 1, channels, 2) if self.per_frequency else (channels, 2)
    init = nn.initializers.normal(self.init_std)
    w_global = self.param("w_global", init, shape)
    w_local = self.param("w_local", init, shape)
    threshold = self.param("threshold", nn.initializers.uniform(1.0), ())
    return spectral_filter(x, w_global, w_local, threshold, self.kernels).astype(x.dtype)


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

  Computes in float32 (or float64 for float64 inputs); the output has the input's dtype.
  """
  spatial: bool = True
  temporal: bool = True
  per_frequency: bool = False
  layer_norm: bool = True
  kernels: str = "auto"

  def _decouple(self, x: jax.Array, name: str) -> jax.Array:
    # PyTorch's LayerNorm epsilon, so imported TSLANet-style blocks agree.
    return (LayerNorm(epsilon=1e-5, kernels=self.kernels, name=name)(x) if self.layer_norm
            else x)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, t, v, c = x.shape
    dtype, x = x.dtype, at_least_float32(x)
    out = x
    if self.spatial:
      joints = self._decouple(x, "spatial_norm").reshape(b * t, v, c)
      fres = SpectralFilter(self.per_frequency, kernels=self.kernels, name="fres")(joints)
      out = out + fres.reshape(b, t, v, c)
    if self.temporal:
      frames = self._decouple(x, "temporal_norm")
      out = out + SpectralFilter(self.per_frequency, kernels=self.kernels, name="fret")(frames)
    return out.astype(dtype)
