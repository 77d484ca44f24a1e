"""The synthetic performers' skeleton: bodies, rotations, forward and inverse kinematics.

Joints are the 25 of NTU RGB+D (0-based NTU order) plus node 25, a zero-length lumbar
joint between the base and the middle of the spine, so the spine can bend without tilting
the hips. Positions are in metres in a performer's body frame: x to the performer's right,
y up, z backwards (the performer faces -z). Sides are -1 (left) and +1 (right).

The kinematics works on whole batches in the layout `(3, 3, joints, n, T)` (matrix axes
first) so that each step is a product of contiguous arrays.
"""
import dataclasses

import numpy as np

NUM_JOINTS = 25
NUM_NODES = NUM_JOINTS + 1  # the NTU joints and the lumbar joint
LUMBAR = 25
SPINE_MID, NECK, HEAD, SPINE_SHOULDER = 1, 2, 3, 20
SHOULDER = {-1: 4, 1: 8}  # side -1 = left, +1 = right (body frame x points right)
ELBOW = {-1: 5, 1: 9}
WRIST = {-1: 6, 1: 10}
HIP = {-1: 12, 1: 16}  # hip, knee, ankle are HIP, HIP + 1, HIP + 2
ANKLES = (14, 18)
# Left-right mirror of the 25 joints.
MIRROR = np.array([0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 20,
                   23, 24, 21, 22])

# The kinematic tree: each node's parent (-1 marks the root, the base of the spine) and an
# order in which every parent comes before its children.
_PARENT = np.array([-1, 25, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18,
                    1, 7, 7, 11, 11, 0])
_ORDER = (0, 25, 1, 20, 2, 3, 4, 5, 6, 7, 21, 22, 8, 9, 10, 11, 23, 24, 12, 13, 14, 15,
          16, 17, 18, 19)
_ARM_NODES = frozenset({5, 6, 7, 9, 10, 11, 21, 22, 23, 24})
_LEAVES = frozenset({3, 15, 19, 21, 22, 23, 24})


@dataclasses.dataclass
class Bodies:
  """Per-sample bodies. offsets: (n, 26, 3) bone vectors in the parent's frame, metres."""
  offsets: np.ndarray
  scale: np.ndarray  # (n,) height / 1.7 m
  ankle_height: np.ndarray  # (n,) ankle above the floor, metres
  upper_arm: np.ndarray  # (n,)
  forearm: np.ndarray  # (n,)
  rest_ankles_xz: np.ndarray  # (n, 2, 2) x, z of the two ankles in the rest pose

  def take(self, index: np.ndarray) -> "Bodies":
    return Bodies(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

  @property
  def arm(self) -> np.ndarray:
    return self.upper_arm + self.forearm


def draw_bodies(rng: np.random.Generator, num: int) -> Bodies:
  """`num` bodies: heights uniform in 1.50-1.92 m, each segment's proportion varied by
  about 4.5 % (clipped at 12 %)."""
  height = rng.uniform(1.50, 1.92, num)
  # Per-segment proportions: torso, head, shoulder width, upper arm, forearm, hand, hip
  # width, thigh, shin.
  f = 1.0 + np.clip(rng.normal(0.0, 0.045, (num, 9)), -0.12, 0.12)
  h = height[:, None]
  torso, head, shoulder, upper, fore, hand, hips, thigh, shin = (f[:, i:i + 1] * h
                                                                   for i in range(9))
  off = np.zeros((num, NUM_NODES, 3))

  def put(joint, x, y, z):
    off[:, joint] = np.concatenate([np.broadcast_to(c, (num, 1)) for c in (x, y, z)], 1)

  zero = np.zeros((num, 1))
  put(SPINE_MID, zero, 0.125 * torso, zero)
  put(SPINE_SHOULDER, zero, 0.150 * torso, zero)
  put(NECK, zero, 0.040 * torso, zero)
  put(HEAD, zero, 0.070 * head, -0.010 * head)
  for side in (-1, 1):
    sh, el, wr = SHOULDER[side], ELBOW[side], WRIST[side]
    put(sh, side * 0.100 * shoulder, -0.025 * h, 0.010 * h)
    put(el, zero, -0.165 * upper, zero)
    put(wr, zero, -0.145 * fore, zero)
    put(wr + 1, zero, -0.045 * hand, zero)  # the hand joint
    tip, thumb = (21, 22) if side == -1 else (23, 24)
    put(tip, zero, -0.040 * hand, zero)
    put(thumb, -side * 0.008 * hand, -0.020 * hand, -0.025 * hand)
    hip = HIP[side]
    put(hip, side * 0.055 * hips, -0.030 * h, zero)
    put(hip + 1, zero, -0.245 * thigh, zero)
    put(hip + 2, zero, -0.245 * shin, zero)
    put(hip + 3, zero, -0.030 * h, -0.070 * h)
  rest = forward(off, euler_matrices_first(np.zeros((NUM_NODES, num, 1, 3))),
                 trunk_only=True)[0][:, 0]
  return Bodies(
      offsets=off, scale=height / 1.7, ankle_height=0.045 * height,
      upper_arm=0.165 * upper[:, 0], forearm=0.145 * fore[:, 0],
      rest_ankles_xz=rest[:, list(ANKLES)][:, :, [0, 2]])


def euler_matrices_first(angles: np.ndarray) -> np.ndarray:
  """(..., 3) angles about x, y, z -> (3, 3, ...) rotations `Rz @ Ry @ Rx`, matrix axes
  first (the layout the kinematics runs in: contiguous products of whole arrays)."""
  angles = np.moveaxis(angles, -1, 0)
  ca, cb, cc = np.cos(angles)
  sa, sb, sc = np.sin(angles)
  out = np.empty((3, 3) + angles.shape[1:])
  out[0, 0], out[0, 1], out[0, 2] = cc * cb, cc * sb * sa - sc * ca, cc * sb * ca + sc * sa
  out[1, 0], out[1, 1], out[1, 2] = sc * cb, sc * sb * sa + cc * ca, sc * sb * ca - cc * sa
  out[2, 0], out[2, 1], out[2, 2] = -sb, cb * sa, cb * ca
  return out


def joint_rotations(angles: np.ndarray) -> np.ndarray:
  """(n, T, 26, 3) joint angles -> (3, 3, 26, n, T) local rotations for `forward`."""
  n, t = angles.shape[:2]
  out = np.zeros((3, 3, NUM_NODES, n, t))
  for i in range(3):
    out[i, i] = 1.0
  moving = np.flatnonzero(np.any(angles != 0, axis=(0, 1, 3)))  # most joints rest
  out[:, :, moving] = euler_matrices_first(np.moveaxis(angles[:, :, moving], 2, 0))
  return out


def euler(angles: np.ndarray) -> np.ndarray:
  """(..., 3) angles about x, y, z -> (..., 3, 3) rotations `Rz @ Ry @ Rx`."""
  return np.moveaxis(euler_matrices_first(angles), (0, 1), (-2, -1))


def yaw(angle: np.ndarray) -> np.ndarray:
  """(...,) -> (..., 3, 3) rotation about y (x turns towards -z for positive angles)."""
  zero = np.zeros_like(angle)
  return euler(np.stack([zero, angle, zero], -1))


def apply(rotation: np.ndarray, vector: np.ndarray) -> np.ndarray:
  """(..., 3, 3) x (..., 3) -> (..., 3), broadcasting the leading axes."""
  return (rotation[..., 0] * vector[..., None, 0] + rotation[..., 1] * vector[..., None, 1]
          + rotation[..., 2] * vector[..., None, 2])


def forward(offsets: np.ndarray, rotations: np.ndarray, trunk_only: bool = False
            ) -> tuple[np.ndarray, np.ndarray]:
  """Forward kinematics with the root at the origin.

  Args:
    offsets: (n, 26, 3) bone vectors, each in its parent's frame.
    rotations: (3, 3, 26, n, T) local joint rotations (`joint_rotations`); joint j's
      rotation turns the bones of its children.
    trunk_only: skip elbows, wrists and hands (their positions are left at 0).
  Returns:
    positions (n, T, 26, 3) and global frames (n, T, 26, 3, 3) in the body frame; frames
    of joints without children (and skipped ones) are left as identity.
  """
  n, t = rotations.shape[-2:]
  pos = np.zeros((NUM_NODES, 3, n, t))
  frame = np.zeros((NUM_NODES, 3, 3, n, t))
  for i in range(3):
    frame[:, i, i] = 1.0
  frame[0] = rotations[:, :, 0]
  for j in _ORDER[1:]:
    if trunk_only and j in _ARM_NODES:
      continue
    parent = frame[_PARENT[j]]
    off = offsets[:, j, :, None]  # (n, 3, 1)
    pos[j] = (pos[_PARENT[j]] + parent[:, 0] * off[:, 0] + parent[:, 1] * off[:, 1]
              + parent[:, 2] * off[:, 2])
    if j not in _LEAVES:
      local = rotations[:, :, j]
      frame[j] = (parent[:, 0, None] * local[None, 0] + parent[:, 1, None] * local[None, 1]
                  + parent[:, 2, None] * local[None, 2])
  return pos.transpose(2, 3, 0, 1), frame.transpose(3, 4, 0, 1, 2)


def ground(pos: np.ndarray, bodies: Bodies, anchor, lift) -> np.ndarray:
  """Puts the feet on the floor (y = 0) and keeps the anchored ankles where they stood.

  pos: (n, T, 26, 3) body-frame positions; anchor: weights of (left, right) ankle whose
  rest x, z position is kept; lift: (n, T) height above the grounded pose (jumps).
  """
  ankles = pos[:, :, list(ANKLES)]  # (n, T, 2, 3)
  shift_y = bodies.ankle_height[:, None] - ankles[..., 1].min(-1) + lift
  w = np.broadcast_to(np.asarray(anchor, dtype=np.float64), ankles.shape[:3])
  drift = ankles[..., [0, 2]] - bodies.rest_ankles_xz[:, None]
  shift_xz = -(w[..., None] * drift).sum(2)
  shift = np.stack([shift_xz[..., 0], shift_y, shift_xz[..., 1]], -1)
  return pos + shift[:, :, None]


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
  norm = np.linalg.norm(v, axis=-1, keepdims=True)
  return np.where(norm > 1e-6, v / np.maximum(norm, 1e-12), fallback)


def arm_ik(target, pole, shoulder, chest, upper, fore):
  """Two-link inverse kinematics of one arm.

  Args:
    target: (n, T, 3) wrist target, body frame.
    pole: (n, T, 3) direction the elbow should point to, body frame.
    shoulder: (n, T, 3) shoulder position; chest: (n, T, 3, 3) frame of the spine shoulder.
    upper, fore: (n,) bone lengths.
  Returns:
    local rotations (n, T, 3, 3) of the shoulder and of the elbow; the elbow is a hinge
    about its local x axis. Out-of-reach targets are clamped to 99.5 % of the reach.
  """
  chest_t = np.swapaxes(chest, -1, -2)
  t = apply(chest_t, target - shoulder)
  q = apply(chest_t, pole)
  l1, l2 = upper[:, None], fore[:, None]
  dist = np.clip(np.linalg.norm(t, axis=-1), np.abs(l1 - l2) + 1e-3, 0.995 * (l1 + l2))
  down = np.array([0.0, -1.0, 0.0])
  u = _unit(t, down)
  cos_alpha = np.clip((l1 ** 2 + dist ** 2 - l2 ** 2) / (2 * l1 * dist), -1, 1)
  cos_inner = np.clip((l1 ** 2 + l2 ** 2 - dist ** 2) / (2 * l1 * l2), -1, 1)
  flex = np.pi - np.arccos(cos_inner)
  side = _unit(np.cross(u, np.array([1.0, 0.0, 0.0])), np.array([0.0, 0.0, 1.0]))
  n_hat = _unit(q - (q * u).sum(-1, keepdims=True) * u, side)
  upper_dir = cos_alpha[..., None] * u + np.sqrt(1 - cos_alpha ** 2)[..., None] * n_hat
  bend = _unit(u - (u * upper_dir).sum(-1, keepdims=True) * upper_dir, -n_hat)
  y_col, z_col = -upper_dir, -bend
  x_col = np.cross(y_col, z_col)
  shoulder_rot = np.stack([x_col, y_col, z_col], -1)
  zero = np.zeros_like(flex)
  elbow_rot = euler(np.stack([flex, zero, zero], -1))
  return shoulder_rot, elbow_rot
