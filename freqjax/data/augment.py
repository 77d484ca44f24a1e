"""The views' augmentations: pure jnp functions of `(key, x)` on one sample.

Every function takes a PRNG key and ONE sample `x (C=3, T, V=25, M)` (xyz, frames, joints,
persons) and returns an array of the same shape; `jax.vmap` them (or use the `batch_*`
wrappers) inside the jitted train step. They follow SkeletonCLR/AimCLR's
`feeder/tools.py`, drawing from explicit keys instead of global random state
(docs/method.md, "Augmentations").

A config section (`data.augment` of configs/pretrain.py, where each field is explained;
`finetune.augment` of configs/eval.py holds the normal view's fields) sets every
probability, angle and switch: `check_config` validates it before anything is compiled and
`view_from_config` builds the view from it.

Zero-padded frames and an absent second person stay exactly zero: shear, rotation, flip
and the axis mask are linear or permutations (a zero frame maps to zero), and noise and
blur are masked with the input's pattern of present `(frame, person)` pairs (unless
`present_only=False`, AimCLR's behaviour). The temporal
crop's reflect padding can move padding frames inside the window: that is the reference
behaviour.
"""
import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

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
  `padding_ratio=0` leaves `x` as it is (the reference crops only for a ratio above 0).
  """
  if padding_ratio == 0:
    return x
  num_frames = x.shape[1]
  pad = num_frames // padding_ratio
  if pad == 0:
    return x
  padded = jnp.concatenate([x[:, :pad][:, ::-1], x, x[:, -pad:][:, ::-1]], axis=1)
  start = jax.random.randint(key, (), 0, 2 * pad + 1)
  return jax.lax.dynamic_slice_in_dim(padded, start, num_frames, axis=1)


def shear(key: jax.Array, x: jax.Array, amplitude: float = 0.5) -> jax.Array:
  """`x <- S x` with `S` 3x3, unit diagonal, off-diagonals `U(-amplitude, amplitude)`.

  `amplitude <= 0` leaves `x` as it is: the reference shears only for an amplitude above 0
  (its configs switch shear off with -1).
  """
  if amplitude <= 0:
    return x
  off_diagonal = jax.random.uniform(key, (3, 3), x.dtype, -amplitude, amplitude)
  return _mix(jnp.where(jnp.eye(3, dtype=bool), 1.0, off_diagonal).astype(x.dtype), x)


def random_flip(key: jax.Array, x: jax.Array, p: float = 0.5) -> jax.Array:
  """With probability p, swaps left and right joints (`FLIP_ORDER`)."""
  return jnp.where(jax.random.bernoulli(key, p), x[:, :, jnp.array(FLIP_ORDER)], x)


def random_time_flip(key: jax.Array, x: jax.Array, p: float = 0.5) -> jax.Array:
  """With probability p, reverses the frames (AimCLR's `random_time_flip`)."""
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
  """Rotates about x, then y, then z: one random main axis by U(0, main_degrees), the
  others by U(0, other_degrees) (AimCLR: 30° and 1°)."""
  axis_key, angle_key = jax.random.split(key)
  main_axis = jax.random.randint(axis_key, (), 0, 3)
  limit = jnp.where(jnp.arange(3) == main_axis, main_degrees, other_degrees)
  angles = jnp.deg2rad(jax.random.uniform(angle_key, (3,)) * limit)
  return _mix(rotation_matrix(angles).astype(x.dtype), x)


def gaussian_noise(key: jax.Array, x: jax.Array, sigma: float = 0.01, p: float = 0.5,
                   present_only: bool = True) -> jax.Array:
  """With probability p, adds N(0, sigma²) to every coordinate of the present frames (of
  every entry, padding included, with `present_only=False`, as AimCLR's `gaus_noise`)."""
  apply_key, noise_key = jax.random.split(key)
  noise = sigma * jax.random.normal(noise_key, x.shape, x.dtype)
  if present_only:
    noise = noise * _present(x)
  return jnp.where(jax.random.bernoulli(apply_key, p), x + noise, x)


def gaussian_blur(key: jax.Array, x: jax.Array, kernel_size: int = 15,
                  sigma_range: tuple[float, float] = (0.1, 2.0), p: float = 0.5,
                  normalize: bool = False, present_only: bool = True) -> jax.Array:
  """With probability p, convolves along T with a Gaussian, zero-padded to keep T.

  The weights are `exp(-k² / (2 sigma²))` for `k` in `[-kernel_size//2, kernel_size//2]`,
  `sigma ~ U(sigma_range)`. AimCLR's `GaussianBlurConv` does not normalise them, so the
  blur also scales the sequence by up to `sigma * sqrt(2 pi)` (about 5 at sigma 2);
  `normalize=True` divides by their sum instead. The result is kept on the present
  frames; `present_only=False` lets it spread into padding frames, as AimCLR's does.
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
  if present_only:
    blurred = blurred * _present(x)
  return jnp.where(jax.random.bernoulli(apply_key, p), blurred, x)


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
                 shear_amplitude: float = 0.5, flip_prob: float = 0.5,
                 rotate_main_degrees: float = 30.0, rotate_other_degrees: float = 1.0,
                 time_flip_prob: float = 0.0, noise_prob: float = 0.5, noise_std: float = 0.01,
                 blur_prob: float = 0.5, blur_kernel_size: int = 15,
                 blur_sigma_min: float = 0.1, blur_sigma_max: float = 2.0,
                 blur_normalize: bool = False, mask_prob: float = 0.5,
                 present_only: bool = True) -> jax.Array:
  """AimCLR's extreme augmentation: the normal view, then flip, rotation, time flip, noise,
  blur, axis mask, in the order of its `_strong_aug`.

  A step whose probability (or both rotation limits, or `noise_std`) is 0 is skipped. The
  time flip is off by default; AimCLR's `_strong_aug` applies it with probability 0.5.
  """
  keys = jax.random.split(key, 7)
  x = normal_view(keys[0], x, padding_ratio, shear_amplitude)
  if flip_prob > 0:
    x = random_flip(keys[1], x, flip_prob)
  if rotate_main_degrees > 0 or rotate_other_degrees > 0:
    x = random_rotate(keys[2], x, rotate_main_degrees, rotate_other_degrees)
  if time_flip_prob > 0:
    x = random_time_flip(keys[3], x, time_flip_prob)
  if noise_prob > 0 and noise_std > 0:
    x = gaussian_noise(keys[4], x, noise_std, noise_prob, present_only)
  if blur_prob > 0:
    x = gaussian_blur(keys[5], x, blur_kernel_size, (blur_sigma_min, blur_sigma_max),
                      blur_prob, blur_normalize, present_only)
  if mask_prob > 0:
    x = axis_mask(keys[6], x, mask_prob)
  return x


def _is_probability(value) -> bool:
  return _is_number(value) and 0.0 <= value <= 1.0


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


# The section's fields each view reads (`extreme_view`'s keyword arguments).
NORMAL_FIELDS = ("padding_ratio", "shear_amplitude")
EXTREME_FIELDS = ("flip_prob", "rotate_main_degrees", "rotate_other_degrees", "time_flip_prob",
                  "noise_prob", "noise_std", "blur_prob", "blur_kernel_size", "blur_sigma_min",
                  "blur_sigma_max", "blur_normalize", "mask_prob", "present_only")

# field: (is the value valid, what a valid value is).
_FIELDS = {
    "enabled": (lambda v: isinstance(v, bool), "True or False"),
    "extreme_query": (lambda v: isinstance(v, bool), "True or False"),
    "blur_normalize": (lambda v: isinstance(v, bool), "True or False"),
    "present_only": (lambda v: isinstance(v, bool), "True or False"),
    "padding_ratio": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                      "an integer >= 0 (0 = no crop)"),
    "shear_amplitude": (_is_number, "a number (<= 0 = no shear)"),
    "rotate_main_degrees": (lambda v: _is_number(v) and 0 <= v <= 180, "degrees in [0, 180]"),
    "rotate_other_degrees": (lambda v: _is_number(v) and 0 <= v <= 180, "degrees in [0, 180]"),
    "noise_std": (lambda v: _is_number(v) and v >= 0, "a number >= 0"),
    "blur_kernel_size": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0
                         and v % 2 == 1, "an odd integer > 0"),
    "blur_sigma_min": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "blur_sigma_max": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    **{name: (_is_probability, "a probability in [0, 1]")
       for name in ("flip_prob", "time_flip_prob", "noise_prob", "blur_prob", "mask_prob")},
}


def check_config(config: Mapping[str, Any], section: str = "data.augment") -> None:
  """Raises `ValueError` naming the first invalid field of an augmentation section.

  Args:
    config: a section with (some of) the fields of configs/pretrain.py's `data.augment`.
    section: its name in the config, for the message (`data.augment`, `finetune.augment`).
  """
  for field, value in config.items():
    if field not in _FIELDS:
      raise ValueError(f"{section}.{field} is not an augmentation setting; the settings are "
                       f"{', '.join(_FIELDS)}.")
    valid, expected = _FIELDS[field]
    if not valid(value):
      raise ValueError(f"{section}.{field} is {value!r}; use {expected}.")
  if config.get("blur_sigma_min", 0) > config.get("blur_sigma_max", float("inf")):
    raise ValueError(f"{section}.blur_sigma_min {config['blur_sigma_min']} is above "
                     f"{section}.blur_sigma_max {config['blur_sigma_max']}; swap them.")


def view_from_config(config: ml_collections.ConfigDict, extreme: bool = False) -> View:
  """The one-sample view `(key, x) -> x'` an augmentation section describes.

  Args:
    config: the section (`check_config` it first).
    extreme: the extreme view instead of the normal one.
  """
  if not config.enabled:
    return lambda key, x: x
  normal = {name: config[name] for name in NORMAL_FIELDS}
  if not extreme:
    return functools.partial(normal_view, **normal)
  return functools.partial(extreme_view, **normal,
                           **{name: config[name] for name in EXTREME_FIELDS})


def per_sample(view: View) -> View:
  """Lifts a one-sample `view(key, x)` to `(key, x (N, ...))` with an independent key each."""

  def batched(key: jax.Array, x: jax.Array) -> jax.Array:
    return jax.vmap(view)(jax.random.split(key, x.shape[0]), x)

  return batched


batch_normal_view = per_sample(normal_view)
batch_extreme_view = per_sample(extreme_view)
