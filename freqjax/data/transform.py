"""The field's skeleton preprocessing: 300-frame arrays and SkeletonCLR/AimCLR's T-frame transform.

Every array here is one sample `(C=3, T, V=25, M=2)`: xyz in metres (Kinect camera space),
frames, NTU joints, persons; an absent person is zeros.

Two steps, as the field runs them:

1. `pad_or_crop`: st-gcn's raw arrays hold 300 frames, zero-padded at the end. Longer
   sequences keep their middle 300 frames, as AimCLR's `tools/utils/pku_read_skeleton.py`
   (`read_xyz`) does (its NTU reader never meets one: NTU sequences have at most 300).
2. `aimclr_transform`: SkeletonCLR/CrosSCLR/AimCLR's `feeder/NTUDatasets.py`
   (`NTUMotionProcessor` with `data_type='relative'`, `sampling='resize'`,
   `y_rotation=True`, as `feeder/preprocess_ntu.py` and `preprocess_pku.py` call it), in
   its order:
   - `center_on_joint`: subtract joint 21 (spine-shoulder) per frame and person;
   - `resize_frames`: the first `valid_length` frames are resized to T with OpenCV's
     `cv2.resize(..., INTER_LINEAR)` along time (half-pixel centres, edge rows repeated,
     no antialiasing when shrinking); both persons share person 1's valid length.
     `valid_length` is the *number* of frames whose joint 1 of person 1 is non-zero, and the
     reference resizes the first that many frames, so a gap inside a sequence shortens it
     at the end; kept as is so arrays match the files users already have;
   - `rotate_to_shoulder_axis`: each frame of each person is rotated about y so the
     shoulder vector (joint 5 -> joint 9, y zeroed) lies along x. The angle is per frame,
     but its sign is chosen once per sequence from the sign of the vector's summed z, so
     frames whose z sign disagrees with the sum are turned the wrong way (reference
     `parallel_skeleton`; kept for the same reason). The angle arithmetic runs in float32
     and the rotation in float64, as the reference does, so outputs match it to float32
     rounding.

The reference needs OpenCV; this is numpy only and vectorised over frames, joints and
persons (one sample takes well under a millisecond).
"""
import numpy as np

MAX_FRAMES = 300
CENTER_JOINT = 21  # 1-based spine-shoulder
LEFT_SHOULDER = 5  # 1-based
RIGHT_SHOULDER = 9  # 1-based
# The reference adds this to the shoulder vector's length before dividing (metres).
_NORM_EPS = 0.0001


def pad_or_crop(x: np.ndarray, max_frames: int = MAX_FRAMES) -> np.ndarray:
  """Fits a sequence to `max_frames` frames as st-gcn's raw arrays hold it.

  Args:
    x: `(3, T, V, M)` coordinates, any float dtype.

  Returns:
    `(3, max_frames, V, M)` float32: the first T frames then zeros, or, when
    T > max_frames, the frames `[(T - max_frames) // 2, (T - max_frames) // 2 + max_frames)`.
  """
  channels, frames, joints, persons = x.shape
  if frames > max_frames:
    start = (frames - max_frames) // 2
    return np.array(x[:, start:start + max_frames], dtype=np.float32)
  out = np.zeros((channels, max_frames, joints, persons), dtype=np.float32)
  out[:, :frames] = x
  return out


def valid_length(x: np.ndarray) -> int:
  """Number of frames of `(3, T, V, M)` `x` where joint 1 of person 1 is non-zero."""
  return int(np.count_nonzero(np.abs(x[:, :, 0, 0]).sum(axis=0)))


def center_on_joint(x: np.ndarray, joint: int = CENTER_JOINT) -> np.ndarray:
  """Subtracts 1-based `joint` of each frame and person from `(3, T, V, M)` `x`."""
  return x - x[:, :, joint - 1:joint, :]


def resize_frames(x: np.ndarray, length: int, frames: int) -> np.ndarray:
  """Resizes the first `length` frames of `x` to `frames` frames like OpenCV INTER_LINEAR.

  `cv2.resize` of the `(length, V, 3)` image to `(frames, V)` in float32: output frame d
  samples source position `s = (d + 0.5) * length / frames - 0.5`, interpolating linearly
  between frames `floor(s)` and `floor(s) + 1`, indices clamped to `[0, length - 1]`.

  Args:
    x: `(3, T, V, M)` float32 with T >= length.
    length: frames of `x` to use, >= 1.
    frames: output frames, >= 1.

  Returns:
    `(3, frames, V, M)` float32.
  """
  if length < 1 or frames < 1 or length > x.shape[1]:
    raise ValueError(f"resize_frames needs 1 <= length <= {x.shape[1]} and frames >= 1; "
                     f"got length={length}, frames={frames}")
  # As pip's opencv-python computes it (its default IPP path, checked against OpenCV 4.5
  # and 5.0): the scale as 1 / (dst / src) and the position in double, the fraction
  # rounded to float32, the weighted sum in float32. (OpenCV built without IPP rounds the
  # position to float32 first; the two differ by ~1e-5 relative.)
  scale = 1.0 / (frames / length)
  position = (np.arange(frames, dtype=np.float64) + 0.5) * scale - 0.5
  below = np.floor(position)
  fraction = (position - below).astype(np.float32)[None, :, None, None]
  below = below.astype(np.int64)
  lower = np.clip(below, 0, length - 1)
  upper = np.clip(below + 1, 0, length - 1)
  x = np.asarray(x, dtype=np.float32)
  return x[:, lower] * (np.float32(1.0) - fraction) + x[:, upper] * fraction


def shoulder_angles(x: np.ndarray) -> np.ndarray:
  """The reference's rotation angle per frame and person, in degrees.

  Args:
    x: `(3, T, V, M)` float32.

  Returns:
    `(T, M)` float32 angles: `arccos(v_x / (|v| + 1e-4))` for the shoulder vector
    `v = joint 9 - joint 5` with y zeroed, negated for every frame of a person whose summed
    `v_z` over frames is >= 0.
  """
  x = np.asarray(x, dtype=np.float32)
  vector = x[:, :, RIGHT_SHOULDER - 1, :] - x[:, :, LEFT_SHOULDER - 1, :]  # (3, T, M)
  vector[1] = 0
  norm = np.sqrt(np.sum(np.square(vector), axis=0))
  angles = np.arccos(vector[0] / (norm + _NORM_EPS)) * (180 / np.pi)
  for person in range(x.shape[-1]):
    # Summed per person over a contiguous row, as the reference does, so the float32
    # rounding (which decides the sign when the sum is near 0) is the same.
    if np.sum(np.ascontiguousarray(vector[2, :, person])) >= 0:
      angles[:, person] = -angles[:, person]
  return angles


def rotate_to_shoulder_axis(x: np.ndarray) -> np.ndarray:
  """Rotates each frame and person of `(3, T, V, M)` `x` about y by `shoulder_angles`.

  Returns:
    `(3, T, V, M)` float32 with `x' = cos(a) x - sin(a) z`, `y' = y`,
    `z' = sin(a) x + cos(a) z`; zero frames and an absent person stay zero.
  """
  x = np.asarray(x, dtype=np.float32)
  radians = shoulder_angles(x) * np.pi / 180
  cos = np.cos(radians).astype(np.float64)[:, None, :]  # (T, 1, M)
  sin = np.sin(radians).astype(np.float64)[:, None, :]
  px, py, pz = x.astype(np.float64)
  return np.stack([cos * px - sin * pz, py, sin * px + cos * pz]).astype(np.float32)


def aimclr_transform(x: np.ndarray, frames: int) -> np.ndarray:
  """SkeletonCLR/AimCLR's preprocessing of one raw sample (see the module docstring).

  Args:
    x: `(3, 300, V, M)` raw coordinates, zero-padded after the last frame (`pad_or_crop`).
    frames: output frames T (the field uses 50).

  Returns:
    `(3, frames, V, M)` float32, centred on joint 21, resized, rotated.

  Raises:
    ValueError: joint 1 of person 1 is zero in every frame (no valid frame to resize).
  """
  x = np.asarray(x, dtype=np.float32)
  length = valid_length(x)
  if length == 0:
    raise ValueError("joint 1 of person 1 is zero in every frame: no valid frame to resize")
  return rotate_to_shoulder_axis(resize_frames(center_on_joint(x), length, frames))
