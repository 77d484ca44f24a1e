"""SPEC §2 augmentations: pure jnp functions of `(key, x)` on one sample.

Every function takes a PRNG key and ONE sample `x (C=3, T, V=25, M)` (xyz, frames, joints,
persons) and returns an array of the same shape; `jax.vmap` them (or use the `batch_*`
wrappers) inside the jitted train step. They follow SkeletonCLR/AimCLR's
`feeder/tools.py`, drawing from explicit keys instead of global random state.

Zero-padded frames and an absent second person stay exactly zero: shear, rotation, flip
and the axis mask are linear or permutations (a zero frame maps to zero), and noise and
blur are masked with the input's pattern of present `(frame, person)` pairs. The temporal
crop's reflect padding can move padding frames inside the window: that is the reference
behaviour.
"""
from collections.abc import Callable

import jax
import jax.numpy as jnp

# AimCLR's left/right swap for NTU joints (0-based): arms 5-8 <-> 9-12, legs 13-16 <->
# 17-20, hands 22-23 <-> 24-25 (1-based). The reference permutes joints only, it does not
# negate x.
FLIP_ORDER = (0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 20, 23,
              24, 21, 22)

View = Callable[[jax.Array, jax.Array], jax.Array]


def _present(x: jax.Array) -> jax.Array:
  """`(1, T, 1, M)` float, 1 where the person has any non-zero coordinate in that frame."""
  return jnp.any(x != 0, axis=(0, 2), keepdims=True).astype(x.dtype)


def _mix(matrix: jax.Array, x: jax.Array) -> jax.Array:
  """`matrix @ x` over the coordinate axis, as exact float32 products (no TF32/bf16 matmul)."""
  return jnp.sum(matrix[:, :, None, None, None] * x[None], axis=1)


def temporal_crop(key: jax.Array, x: jax.Array, padding_ratio: int = 6) -> jax.Array:
  """Reflect-pads `T // padding_ratio` frames at each end and takes a random T-frame window.

  The padding mirrors the end frames including the edge frame (`x[p-1], ..., x[0], x[0],
  ...`), and the window starts uniformly in `[0, 2p]`, as SkeletonCLR's `temperal_crop`.
  """
  num_frames = x.shape[1]
  pad = num_frames // padding_ratio
  if pad == 0:
    return x
  padded = jnp.concatenate([x[:, :pad][:, ::-1], x, x[:, -pad:][:, ::-1]], axis=1)
  start = jax.random.randint(key, (), 0, 2 * pad + 1)
  return jax.lax.dynamic_slice_in_dim(padded, start, num_frames, axis=1)


def shear(key: jax.Array, x: jax.Array, amplitude: float = 0.5) -> jax.Array:
  """`x <- S x` with `S` 3x3, unit diagonal, off-diagonals `U(-amplitude, amplitude)`."""
  off_diagonal = jax.random.uniform(key, (3, 3), x.dtype, -amplitude, amplitude)
  return _mix(jnp.where(jnp.eye(3, dtype=bool), 1.0, off_diagonal).astype(x.dtype), x)


def random_flip(key: jax.Array, x: jax.Array, p: float = 0.5) -> jax.Array:
  """With probability p, swaps left and right joints (`FLIP_ORDER`)."""
  return jnp.where(jax.random.bernoulli(key, p), x[:, :, jnp.array(FLIP_ORDER)], x)


def random_time_flip(key: jax.Array, x: jax.Array, p: float = 0.5) -> jax.Array:
  """With probability p, reverses the frames (AimCLR's `random_time_flip`; not in SPEC §2)."""
  return jnp.where(jax.random.bernoulli(key, p), x[:, ::-1], x)


def rotation_matrix(angles: jax.Array) -> jax.Array:
  """`R_z @ R_y @ R_x` for angles `(3,)` in radians about x, y, z (AimCLR's convention)."""
  c, s = jnp.cos(angles), jnp.sin(angles)
  one, zero = jnp.ones_like(c[0]), jnp.zeros_like(c[0])
  r_x = jnp.array([[one, zero, zero], [zero, c[0], s[0]], [zero, -s[0], c[0]]])
  r_y = jnp.array([[c[1], zero, -s[1]], [zero, one, zero], [s[1], zero, c[1]]])
  r_z = jnp.array([[c[2], s[2], zero], [-s[2], c[2], zero], [zero, zero, one]])
  highest = jax.lax.Precision.HIGHEST
  return jnp.matmul(r_z, jnp.matmul(r_y, r_x, precision=highest), precision=highest)


def random_rotate(key: jax.Array, x: jax.Array, main_degrees: float = 30.0,
                  other_degrees: float = 1.0) -> jax.Array:
  """Rotates about x, then y, then z: one random main axis by U(0, 30°), the others U(0, 1°)."""
  axis_key, angle_key = jax.random.split(key)
  main_axis = jax.random.randint(axis_key, (), 0, 3)
  limit = jnp.where(jnp.arange(3) == main_axis, main_degrees, other_degrees)
  angles = jnp.deg2rad(jax.random.uniform(angle_key, (3,)) * limit)
  return _mix(rotation_matrix(angles).astype(x.dtype), x)


def gaussian_noise(key: jax.Array, x: jax.Array, sigma: float = 0.01,
                   p: float = 0.5) -> jax.Array:
  """With probability p, adds N(0, sigma²) to every coordinate of the present frames."""
  apply_key, noise_key = jax.random.split(key)
  noise = sigma * jax.random.normal(noise_key, x.shape, x.dtype) * _present(x)
  return jnp.where(jax.random.bernoulli(apply_key, p), x + noise, x)


def gaussian_blur(key: jax.Array, x: jax.Array, kernel_size: int = 15,
                  sigma_range: tuple[float, float] = (0.1, 2.0), p: float = 0.5,
                  normalize: bool = False) -> jax.Array:
  """With probability p, convolves along T with a Gaussian, zero-padded to keep T.

  The weights are `exp(-k² / (2 sigma²))` for `k` in `[-kernel_size//2, kernel_size//2]`,
  `sigma ~ U(sigma_range)`. AimCLR's `GaussianBlurConv` does not normalise them, so the
  blur also scales the sequence by up to `sigma * sqrt(2 pi)` (about 5 at sigma 2);
  `normalize=True` divides by their sum instead.
  """
  apply_key, sigma_key = jax.random.split(key)
  sigma = jax.random.uniform(sigma_key, (), x.dtype, *sigma_range)
  radius = kernel_size // 2
  offsets = jnp.arange(-radius, radius + 1, dtype=x.dtype)
  weights = jnp.exp(-offsets**2 / (2 * sigma**2))
  if normalize:
    weights = weights / jnp.sum(weights)
  num_frames = x.shape[1]
  padded = jnp.pad(x, ((0, 0), (radius, radius), (0, 0), (0, 0)))
  blurred = sum(weights[i] * padded[:, i:i + num_frames] for i in range(2 * radius + 1))
  return jnp.where(jax.random.bernoulli(apply_key, p), blurred * _present(x), x)


def axis_mask(key: jax.Array, x: jax.Array, p: float = 0.5) -> jax.Array:
  """With probability p, zeroes one random coordinate axis (x, y or z) everywhere."""
  apply_key, axis_key = jax.random.split(key)
  axis = jax.random.randint(axis_key, (), 0, 3)
  drop = jax.random.bernoulli(apply_key, p) & (jnp.arange(3) == axis)
  return jnp.where(drop[:, None, None, None], jnp.zeros_like(x), x)


def normal_view(key: jax.Array, x: jax.Array, padding_ratio: int = 6,
                shear_amplitude: float = 0.5) -> jax.Array:
  """The MoCo views' augmentation: temporal crop, then shear."""
  crop_key, shear_key = jax.random.split(key)
  return shear(shear_key, temporal_crop(crop_key, x, padding_ratio), shear_amplitude)


def extreme_view(key: jax.Array, x: jax.Array, padding_ratio: int = 6,
                 shear_amplitude: float = 0.5, time_flip: bool = False,
                 normalize_blur: bool = False) -> jax.Array:
  """AimCLR's extreme augmentation: the normal view, then flip, rotation, noise, blur, mask.

  `time_flip=True` adds AimCLR's random time reversal (p 0.5, after the rotation), which
  its `_strong_aug` applies but SPEC §2 does not list.
  """
  keys = jax.random.split(key, 7)
  x = normal_view(keys[0], x, padding_ratio, shear_amplitude)
  x = random_flip(keys[1], x)
  x = random_rotate(keys[2], x)
  if time_flip:
    x = random_time_flip(keys[3], x)
  x = gaussian_noise(keys[4], x)
  x = gaussian_blur(keys[5], x, normalize=normalize_blur)
  return axis_mask(keys[6], x)


def per_sample(view: View) -> View:
  """Lifts a one-sample `view(key, x)` to `(key, x (N, ...))` with an independent key each."""

  def batched(key: jax.Array, x: jax.Array) -> jax.Array:
    return jax.vmap(view)(jax.random.split(key, x.shape[0]), x)

  return batched


batch_normal_view = per_sample(normal_view)
batch_extreme_view = per_sample(extreme_view)
