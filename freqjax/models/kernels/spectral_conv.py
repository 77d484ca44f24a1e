"""A wide temporal convolution computed through the discrete Fourier transform over frames.

Used by `kernels.cpu.temporal_conv` for stride-1 convolutions where it does at most half
the multiplications of the direct convolution and is wide enough to pay for its transforms
(`is_cheaper`): the encoder's last block (`block9`: 256 → 256 channels, 9 taps, 13
frames), where the direct convolution's forward pass, input gradient and weight gradient
are a fifth of the MICA step on a CPU.

The arithmetic. For output frames `t = 0..T−1` the 'same' convolution is the correlation
`y[t] = Σ_k w[k] x[t + k − p]`, `p = (K − 1) / 2`, with `x` zero outside its frames. Place
`x` at frames `p..p+T−1` of a sequence `x̃` of `N = T + K − 1` frames; then `y[t] = Σ_s
x̃[s] w[(s − t) mod N]` (`w` zero past tap K−1): the frames `t + k` never wrap around.
With `X[f] = Σ_s x̃[s] e^{−2πifs/N}` and `Ŵ[f] = Σ_k w[k] e^{+2πifk/N}`,

    y[t] = (1/N) Σ_f Re(P[f] e^{+2πift/N}),   P[f] = X[f] Ŵ[f]   (a C_in × C_out product),

and since `x` and `w` are real, the bins `f = 0..⌊N/2⌋` suffice, each counted twice except
bin 0 and, for even N, bin N/2. Per row (batch × joint) and bin, the channel mixing is a
complex matrix product, three real ones (Gauss's form); the direct convolution does `T·K`
real ones per row. At 13 frames and 9 taps that is 33 against 117. The transforms over
frames are products with fixed `(2F, T)` cosine/sine matrices, whose cost grows with the
channels, not with their square. Autodiff's gradients keep the same form: the input
gradient and the weight gradient are again per-bin products.

The result equals the direct convolution up to float rounding (a few ulps of the output's
scale; the transforms are orthogonal up to scale). Inputs below float32 (bfloat16) keep
the direct convolution: the transforms would round in the low precision at every stage.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

from freqjax.models.kernels.common import EXACT


# Channel pairs `C_in·C_out` below which the direct convolution is as fast (see `is_cheaper`).
_MIN_CHANNEL_PRODUCT = 128 * 128


def is_cheaper(frames: int, kernel_size: int, channels_in: int, channels_out: int,
               dtype) -> bool:
  """Whether `spectral_temporal_conv` beats the direct convolution: stride 1, odd
  `kernel_size`, float32 or wider, at least `_MIN_CHANNEL_PRODUCT` channel pairs, and at
  most half the direct convolution's multiplications.

  Measured on a 2-core AVX2 CPU at batch 128 × 25 joints, 9 taps, in one process, the
  forward pass then forward and both gradients (ms, spectral against direct): 256
  channels at 13 frames 175 + 389 against 329 + 799; 64 channels at 13 frames 40 + 77
  against 29 + 83; 32 at 25 frames 26 + 50 against 16 + 59; 16 at 50 frames 34 + 60
  against 21 + 67. The narrow ones do a third to a half of the multiplications and still
  gain nothing: their per-bin products are too small to pay for the transforms.
  """
  if kernel_size == 1 or kernel_size % 2 == 0 or jnp.dtype(dtype).itemsize < 4:
    return False
  if channels_in * channels_out < _MIN_CHANNEL_PRODUCT:
    return False
  bins = (frames + kernel_size - 1) // 2 + 1
  transforms = 2 * bins * frames * (channels_in + channels_out)
  spectral = transforms + 3 * bins * channels_in * channels_out
  return spectral <= frames * kernel_size * channels_in * channels_out / 2


@functools.lru_cache(maxsize=None)
def _transforms(frames: int, kernel_size: int) -> tuple[np.ndarray, ...]:
  """Float64 matrices of the transform, for `F = ⌊N/2⌋ + 1` bins, `N = T + K − 1`:

  - `forward (2, F, T)`: real and imaginary parts of `X[f]` from the `T` frames (placed
    at `p..p+T−1` of the N-frame sequence);
  - `taps (2, F, K)`: real and imaginary parts of `Ŵ[f]` from the `K` taps;
  - `inverse (2, F, T)`: `y[t] = Σ_f inverse[0, f, t]·Re P[f] + inverse[1, f, t]·Im P[f]`,
    the bin weights 1/N or 2/N included.
  """
  n = frames + kernel_size - 1
  pad = (kernel_size - 1) // 2
  f = np.arange(n // 2 + 1)[:, None]
  angle = lambda positions: 2 * np.pi * f * positions[None, :] / n
  frames_at = angle(np.arange(frames) + pad)
  taps_at = angle(np.arange(kernel_size))
  out_at = angle(np.arange(frames))
  # Bin 0 and (even N) bin N/2 are their own conjugates: counted once, the rest twice.
  weight = np.where((f == 0) | (2 * f == n), 1.0, 2.0) / n
  forward = np.stack([np.cos(frames_at), -np.sin(frames_at)])
  taps = np.stack([np.cos(taps_at), np.sin(taps_at)])
  inverse = np.stack([weight * np.cos(out_at), -weight * np.sin(out_at)])
  return forward, taps, inverse


def spectral_temporal_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """The stride-1 'same' temporal convolution (no bias) of `kernels.xla.temporal_conv`.

  Args:
    x: `(B, T, ..., C_in)`: every axis between frames and channels is another row axis.
    kernel: `(K, 1, C_in, C_out)`, K odd.

  Returns:
    `(B, T, ..., C_out)` in the dtype of `x`.
  """
  b, frames, *middle, c_in = x.shape
  kernel_size, c_out = kernel.shape[0], kernel.shape[-1]
  forward, taps, inverse = (jnp.asarray(m, x.dtype) for m in _transforms(frames, kernel_size))
  bins = forward.shape[1]
  product = functools.partial(jnp.einsum, precision=EXACT)

  # Ŵ[f]: (F, C_in, C_out) real and imaginary parts.
  w_re, w_im = (product("fk,kio->fio", taps[i], kernel[:, 0].astype(x.dtype)) for i in (0, 1))
  # X[f] for every row: (2F, B·R, C_in), the real parts then the imaginary ones.
  spectrum = product("ft,btrc->fbrc", forward.reshape(2 * bins, frames),
                     x.reshape(b, frames, -1, c_in)).reshape(2, bins, -1, c_in)
  x_re, x_im = spectrum[0], spectrum[1]
  # P = X·Ŵ with three real products instead of four (Gauss): with k1 = (Xr + Xi)·Ŵr,
  # k2 = Xr·(Ŵi − Ŵr), k3 = Xi·(Ŵr + Ŵi), Re P = k1 − k3 and Im P = k1 + k2.
  k1 = product("fri,fio->fro", x_re + x_im, w_re)
  k2 = product("fri,fio->fro", x_re, w_im - w_re)
  k3 = product("fri,fio->fro", x_im, w_re + w_im)
  y = product("ft,fro->tro", inverse[0], k1 - k3) + product("ft,fro->tro", inverse[1], k1 + k2)
  return jnp.moveaxis(y.reshape(frames, b, *middle, c_out), 0, 1)
