"""FreST: frequency-domain spatial (FreS, over joints) and temporal (FreT, over frames)
filtering (MICA §4.2; SPEC §4).

The filter is TSLANet's `Adaptive_Spectral_Block` applied to skeleton axes: an rFFT along
the sequence, a global complex filter on the whole spectrum plus a local complex filter on
the bins whose energy (relative to the median) exceeds a learnable threshold, and the
inverse rFFT.

Complex weights are stored as float32 `(..., 2)` real/imaginary pairs and combined with
`jax.lax.complex`: `jax.grad` of a complex leaf is the conjugate of the descent direction
and optax does not conjugate it, so complex leaves would make SGD diverge. Pairs also map
1:1 onto TSLANet's PyTorch parameters.
"""
import jax
import jax.numpy as jnp
from flax import linen as nn


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
  num_bins = energy.shape[-1]
  # torch.median returns the lower of the two middle values for an even count.
  median = jnp.sort(energy, axis=-1)[:, (num_bins - 1) // 2]
  normalized = energy / (median[:, None] + epsilon)
  hard = (normalized > threshold).astype(jnp.float32)
  mask = jax.lax.stop_gradient(hard - threshold) + threshold
  return mask[..., None]


def spectral_filter(x: jax.Array, w_global: jax.Array, w_local: jax.Array,
                    threshold: jax.Array) -> jax.Array:
  """SPEC §4 steps 2–6 on a batch of sequences.

  Args:
    x: float `(B, L, C)`: batch, sequence (joints for FreS, frames for FreT), channels.
    w_global, w_local: float32 real/imaginary pairs, `(C, 2)` (one complex weight per
      channel) or `(L//2 + 1, C, 2)` (one per frequency and channel).
    threshold: float32 scalar.

  Returns:
    float32 `(B, L, C)`: `irfft(F ⊙ W_g + (F ⊙ M) ⊙ W_l)` with `F = rfft(x)` ("ortho").
  """
  length = x.shape[1]
  spectrum = jnp.fft.rfft(x.astype(jnp.float32), axis=1, norm="ortho")
  as_complex = lambda w: jax.lax.complex(w[..., 0], w[..., 1])
  mask = frequency_mask(spectrum, threshold)
  filtered = spectrum * as_complex(w_global) + (spectrum * mask) * as_complex(w_local)
  return jnp.fft.irfft(filtered, n=length, axis=1, norm="ortho")


class SpectralFilter(nn.Module):
  """Learnable adaptive spectral filter on `(B, L, C)` → `(B, L, C)`.

  Attributes:
    per_frequency: one complex weight per frequency bin and channel `(L//2+1, C, 2)`
      instead of one per channel `(C, 2)` (SPEC §4 [choice]: per channel by default).
    init_std: std of the real and imaginary parts at init (TSLANet: 0.02).
  """
  per_frequency: bool = False
  init_std: float = 0.02

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    _, length, channels = x.shape
    shape = (length // 2 + 1, channels, 2) if self.per_frequency else (channels, 2)
    init = nn.initializers.normal(self.init_std)
    w_global = self.param("w_global", init, shape)
    w_local = self.param("w_local", init, shape)
    threshold = self.param("threshold", nn.initializers.uniform(1.0), ())
    return spectral_filter(x, w_global, w_local, threshold).astype(x.dtype)


class FreST(nn.Module):
  """`X + FreS(X) + FreT(X)` on a feature map `(B, T, V, C)`.

  Decoupling (SPEC §4.1): FreS sees each frame as a sequence over joints `(B·T, V, C)`,
  FreT each joint as a sequence over frames `(B·V, T, C)`, each after its own LayerNorm.

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
    return nn.LayerNorm(epsilon=1e-5, name=name)(x) if self.layer_norm else x

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, t, v, c = x.shape
    out = x
    if self.spatial:
      joints = self._decouple(x, "spatial_norm").reshape(b * t, v, c)
      fres = SpectralFilter(self.per_frequency, name="fres")(joints)
      out = out + fres.reshape(b, t, v, c)
    if self.temporal:
      frames = self._decouple(x, "temporal_norm").transpose(0, 2, 1, 3).reshape(b * v, t, c)
      fret = SpectralFilter(self.per_frequency, name="fret")(frames)
      out = out + fret.reshape(b, v, t, c).transpose(0, 2, 1, 3)
    return out
