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
from freqjax.models.kernels.common import EXACT
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


# PyTorch's LayerNorm epsilon, so imported TSLANet-style blocks agree.
_LAYER_NORM_EPSILON = 1e-5


def _normalized(x: jax.Array, epsilon: float) -> jax.Array:
  """`(x − mean) / sqrt(var + ε)` over the last axis (biased variance, two passes): a
  LayerNorm without its scale and bias. The kernel sets' `layer_norm` with a unit scale
  and zero bias computes the same; in the encoder it was no faster (if anything slower,
  within the noise), and the CPU set's hand-written gradient serves only scale and bias."""
  centered = x - jnp.mean(x, axis=-1, keepdims=True)
  return centered * jax.lax.rsqrt(jnp.mean(jnp.square(centered), axis=-1, keepdims=True)
                                  + epsilon)


def joint_mean_of_frest(x: jax.Array, norms: dict, filters: dict, kernels: str = "auto",
                        epsilon: float = _LAYER_NORM_EPSILON) -> jax.Array:
  """`FreST(x)` averaged over joints, `(B, T, V, C)` → `(B, T, C)`, without computing it.

  docs/method.md, "FreST", "After the last block". Both LayerNorms normalise the same
  rows, so the normalised map `x̂` is computed once; each branch's input is `u = x̂·s + b`
  with its own scale and bias. Once the masks are fixed, both filters are linear in `u`:
  - FreS: the mean over joints of an inverse transform over joints is its bin 0 over √V,
    and bin 0 of the filtered spectrum is `√V·mean_v(u)·(W_g + M_0·W_l)`. So the mean is
    `mean_v(u)·(Re W_g[0] + M_0·Re W_l[0])`, `M_0` per frame.
  - FreT: `mean_v(F_v ⊙ (W_g + M_v ⊙ W_l)) = mean_v(F_v) ⊙ W_g + mean_v(M_v ⊙ F_v) ⊙ W_l`
    with `F_v` the spectrum over frames of joint v. `mean_v(F_v)` is the spectrum of
    `mean_v(u)`; bin f of `mean_v(M_v ⊙ F_v)` is bin f of the spectrum of `y_f =
    mean_v(M_{f,v}·u_v)`, a mask-weighted mean over joints `(B, T, L_f, C)`. One inverse
    transform per frame sequence.
  The masks need every bin's energy: one transform of `x̂` over joints and one over frames,
  both outside the gradient (the mask passes gradient only to θ), and the affine maps
  carried into the spectrum (`rfft(x̂·s + b) = s·rfft(x̂) + b·√L` at bin 0). The backward
  pass has no transform of the map's size.

  Args:
    x: float `(B, T, V, C)`.
    norms: `{"fres": (scale, bias), "fret": ...}`, each `(C,)`, or None per branch for
      FreST without LayerNorms; `filters`: `{"fres": (w_global, w_local, threshold),
      "fret": ...}` (`SpectralFilter.weights`) for the branches that are on.
    kernels: `model.kernels` (`freqjax.models.kernels`), for the means over joints.

  Returns:
    float32 (float64 for float64 `x`) `(B, T, C)`: `mean_v(x + FreS(x) + FreT(x))`.
  """
  x = at_least_float32(x)
  batch, frames, joints, channels = x.shape
  # Means over joints and the masked means are matrix products: XLA:CPU materialises a
  # product's operand once, where it fuses the block's last operations (temporal
  # convolution, BatchNorm, dropout, residual, ReLU) into every elementwise consumer of
  # the map and recomputes them there.
  mean_over_joints = lambda a: kernel_set(kernels).mean_over_middle(
      a.reshape(-1, joints, channels)).reshape(batch, frames, channels)
  x_mean = mean_over_joints(x)
  x_hat = _normalized(x, epsilon) if any(n is not None for n in norms.values()) else None
  x_hat_mean = None if x_hat is None else mean_over_joints(x_hat)

  def branch_input(name):
    """`(hat, mean_v(hat), scale, bias)`: the branch's input is `hat·scale + bias`."""
    if norms[name] is None:
      return x, x_mean, jnp.ones((), x.dtype), jnp.zeros((), x.dtype)
    return (x_hat, x_hat_mean, *norms[name])

  def energies(axis, hat, scale, bias):
    """`(B, ..., C)` → the energy of each bin of the input's spectrum along `axis`,
    summed over channels; no gradient."""
    length = x.shape[axis]
    spectrum = jnp.fft.rfft(jax.lax.stop_gradient(hat), axis=axis, norm="ortho")
    scale, bias = jax.lax.stop_gradient(scale), jax.lax.stop_gradient(bias)
    re, im = jnp.real(spectrum) * scale, jnp.imag(spectrum) * scale
    at_bin0 = (slice(None),) * axis + (slice(0, 1),)
    re = re.at[at_bin0].add(bias * jnp.sqrt(float(length)))
    return jnp.sum(jnp.square(re) + jnp.square(im), axis=-1)

  out = x_mean
  if "fres" in filters:
    hat, hat_mean, scale, bias = branch_input("fres")
    w_global, w_local, threshold = filters["fres"]
    energy = jnp.moveaxis(energies(2, hat, scale, bias), 2, 1)  # (B, V_f, T)
    bin0_mask = _mask_from_energy(energy, threshold)[:, 0, :, None]  # (B, T, 1)
    first = lambda w: w[0] if w.ndim == 3 else w  # the weights of bin 0, (C, 2)
    gain = first(w_global)[:, 0] + bin0_mask * first(w_local)[:, 0]  # (B, T, C)
    out = out + (hat_mean * scale + bias) * gain

  if "fret" in filters:
    hat, hat_mean, scale, bias = branch_input("fret")
    w_global, w_local, threshold = filters["fret"]
    mask = _mask_from_energy(energies(1, hat, scale, bias), threshold)  # (B, T_f, V)
    weights = mask / joints
    # y[b, t, f, c] = Σ_v M[b, f, v]·u[b, t, v, c] / V, with u = x̂·s + b: per frame, a
    # (L_f, V) × (V, C) product.
    per_frame = jnp.broadcast_to(weights[:, None], (batch, frames, *weights.shape[1:]))
    masked_mean = (jnp.einsum("btfv,btvc->btfc", per_frame, hat, precision=EXACT) * scale
                   + jnp.sum(weights, axis=-1)[:, None, :, None] * bias)
    bins = jnp.arange(mask.shape[1])
    masked = jnp.fft.rfft(masked_mean, axis=1, norm="ortho")[:, bins, bins]  # (B, T_f, C)
    unmasked = jnp.fft.rfft(hat_mean * scale + bias, axis=1, norm="ortho")
    as_complex = lambda w: jax.lax.complex(w[..., 0], w[..., 1])
    spectrum = unmasked * as_complex(w_global) + masked * as_complex(w_local)
    out = out + jnp.fft.irfft(spectrum, n=frames, axis=1, norm="ortho")
  return out


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
  def weights(self, length: int, channels: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(w_global, w_local, threshold)` for sequences of `length` with `channels`."""
    shape = (length // 2 + 1, channels, 2) if self.per_frequency else (channels, 2)
    init = nn.initializers.normal(self.init_std)
    w_global = self.param("w_global", init, shape)
    w_local = self.param("w_local", init, shape)
    threshold = self.param("threshold", nn.initializers.uniform(1.0), ())
    return w_global, w_local, threshold

  def __call__(self, x: jax.Array) -> jax.Array:
    weights = self.weights(x.shape[1], x.shape[-1])
    return spectral_filter(x, *weights, self.kernels).astype(x.dtype)


# Each branch's LayerNorm, by the parameter names of the PyTorch block.
BRANCH_NORMS = {"fres": "spatial_norm", "fret": "temporal_norm"}


class LayerNormAffine(nn.Module):
  """The parameters of a LayerNorm over the last axis: `nn.LayerNorm`'s `scale` and `bias`
  `(C,)` and their initialisation. FreST applies them (`branch_sequences`,
  `joint_mean_of_frest`)."""

  @nn.compact
  def __call__(self, features: int) -> tuple[jax.Array, jax.Array]:
    return (self.param("scale", nn.initializers.ones, (features,)),
            self.param("bias", nn.initializers.zeros, (features,)))


def branch_sequences(x: jax.Array, branch: str, affine: tuple | None,
                     kernels: str = "auto") -> jax.Array:
  """The sequences a FreST branch filters: the map after the branch's LayerNorm.

  Args:
    x: float `(B, T, V, C)`, the map FreST receives.
    branch: `"fres"` (each frame a sequence over joints) or `"fret"` (each joint a
      sequence over frames, filtered in place along T).
    affine: the LayerNorm's `(scale, bias)`, or None for FreST without LayerNorms.
    kernels: `model.kernels` (`freqjax.models.kernels`).

  Returns:
    FreS: `(B·T, V, C)`; FreT: `(B, T, V, C)`.
  """
  if affine is not None:
    x = kernel_set(kernels).layer_norm(x, *affine, _LAYER_NORM_EPSILON)
  return x.reshape(-1, *x.shape[2:]) if branch == "fres" else x


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
      encoder's pooling and the harmonizer read of the last block, computed without the
      map itself (`joint_mean_of_frest`). The same parameters and numbers.

  Computes in float32 (or float64 for float64 inputs); the output has the input's dtype.
  """
  spatial: bool = True
  temporal: bool = True
  per_frequency: bool = False
  layer_norm: bool = True
  kernels: str = "auto"
  mean_over_joints: bool = False

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    c = x.shape[-1]
    dtype, x = x.dtype, at_least_float32(x)
    # Each branch on, and the axis it filters along.
    branches = [(name, axis) for name, axis, on in (("fres", 2, self.spatial),
                                                    ("fret", 1, self.temporal)) if on]
    affines = {name: LayerNormAffine(name=BRANCH_NORMS[name])(c) if self.layer_norm else None
               for name, _ in branches}
    filters = {name: SpectralFilter(self.per_frequency, kernels=self.kernels, name=name)
               for name, _ in branches}
    if self.mean_over_joints:
      out = joint_mean_of_frest(
          x, affines, {name: filters[name].weights(x.shape[axis], c) for name, axis in branches},
          self.kernels)
      return out.astype(dtype)
    out = x
    for name, _ in branches:
      filtered = filters[name](branch_sequences(x, name, affines[name], self.kernels))
      out = out + filtered.reshape(x.shape)
    return out.astype(dtype)
