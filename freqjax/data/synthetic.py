"""Synthetic NTU RGB+D-style skeleton actions: the dataset freqjax ships with.

A procedural generator of 14 action classes in the NTU RGB+D layout (25 joints, NTU
order, metres, Kinect camera space: y up, z the depth in front of the camera). Each sample
is a performer (a body with its own height, limb proportions and style) doing one action,
seen by one of a few cameras.

How a sample is made:
1. A rest pose with the performer's bone lengths; a kinematic tree rooted at the base of
   the spine (plus a virtual lumbar joint so the spine can bend without tilting the hips).
2. The action sets joint angles over a phase `u` in [0, 1] (time-warped per sample for
   speed variation) and, for the arms, wrist targets (mouth, partner's hand, partner's
   chest...) reached by two-link inverse kinematics, so every pose comes out of forward
   kinematics and bone lengths stay exactly constant.
3. The feet stay on the floor (vertical grounding; horizontal anchoring of the stance
   feet), so sitting moves the hips down and back the way it does in reality.
4. Variation: per-performer amplitude and speed, left-handed performers (one-person
   actions mirrored), the free hand now and then doing something incidental (hand on hip,
   scratching the head...), two-person samples in either body order.
5. Scene: facing and position (two persons face each other), a camera view (rotation
   about y: view 1 frontal, 2 and 3 at +-45 degrees, plus jitter), camera height and tilt,
   slow body sway, then Gaussian sensor noise (larger on hand tips and thumbs) and, in
   about a quarter of the samples, a limb that jumps off for a few frames (tracking loss).
   Optionally (`elevation_degrees`, `roll_degrees`, off by default) each sample is also
   seen from a camera raised or lowered and rolled by a random angle: a harder variant in
   which orientation, not only the action, moves every coordinate.
6. Idle frames before and after the action; the valid length varies (60-100 % of T) and
   the rest is zero-padded. An absent second person is all zeros.

Files are written as the field's NTU preparation writes them (`{split}_position.npy`,
`(N, 3, T, 25, 2)` float32, and `{split}_label.pkl` = `(sample_names, labels)`), with a
cross-performer and a cross-view split. `python -m freqjax.data.synthetic --out DIR`.
"""
import argparse
import dataclasses
import json
import os
import pickle
from typing import Callable, Sequence

import numpy as np

from freqjax.data import transform

CLASS_NAMES: tuple[str, ...] = (
    "drink water", "eat meal", "brush teeth", "hand waving", "clapping",
    "kicking something", "jump up", "sit down", "stand up", "bow", "punch",
    "handshaking", "hugging", "pushing other person")
TWO_PERSON_CLASSES = frozenset({11, 12, 13})
BENCHMARKS = ("xperformer", "xview")

NUM_JOINTS = 25
NUM_PERSONS = 2
# Kinematic tree over the 25 NTU joints (0-based) plus node 25, a zero-length lumbar
# joint between the base of the spine and the middle of the spine. -1 marks the root.
_LUMBAR = 25
_PARENT = np.array([-1, 25, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18,
                    1, 7, 7, 11, 11, 0])
_ORDER = (0, 25, 1, 20, 2, 3, 4, 5, 6, 7, 21, 22, 8, 9, 10, 11, 23, 24, 12, 13, 14, 15,
          16, 17, 18, 19)
# 0-based NTU joints.
_SPINE_MID, _NECK, _HEAD, _SPINE_SHOULDER = 1, 2, 3, 20
_SHOULDER = {-1: 4, 1: 8}  # side -1 = left, +1 = right (body frame x points right)
_ELBOW = {-1: 5, 1: 9}
_WRIST = {-1: 6, 1: 10}
_HIP = {-1: 12, 1: 16}  # hip, knee, ankle are HIP, HIP + 1, HIP + 2
_ANKLES = (14, 18)
_FINGERS = (21, 22, 23, 24)  # hand tips and thumbs: Kinect tracks them worst
# Left-right mirror of the 25 joints.
_MIRROR = np.array([0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15, 20,
                    23, 24, 21, 22])
# Joint groups a Kinect tracker loses now and then (occlusion): arms and legs.
_LIMBS = ((4, 5, 6, 7, 21, 22), (8, 9, 10, 11, 23, 24), (12, 13, 14, 15), (16, 17, 18, 19))
_ARM_NODES = frozenset({5, 6, 7, 9, 10, 11, 21, 22, 23, 24})
_LEAVES = frozenset({3, 15, 19, 21, 22, 23, 24})

_ANCHOR_BOTH = (0.5, 0.5)
_ANCHOR_LEFT = (1.0, 0.0)
_ANCHOR_NONE = (0.0, 0.0)


def view_angle(view: int) -> float:
  """Base camera angle in radians: view 1 frontal, 2 at +45 deg, 3 at -45 deg, 4 at +90..."""
  step = (view // 2) * np.pi / 4
  return float(step if view % 2 == 0 else -step)


def xperformer_train_ids(num_performers: int) -> list[int]:
  """Performers whose samples train under the cross-performer benchmark: the odd ids."""
  return [p for p in range(1, num_performers + 1) if p % 2 == 1]


def xview_train_ids(num_views: int) -> list[int]:
  """Views that train under the cross-view benchmark: all but view 1 (NTU: cameras 2, 3)."""
  return list(range(2, num_views + 1))


# --------------------------------------------------------------------------------------
# Bodies and kinematics.


@dataclasses.dataclass
class _Bodies:
  """Per-sample bodies. offsets: (n, 26, 3) bone vectors in the parent's frame, metres."""
  offsets: np.ndarray
  scale: np.ndarray  # (n,) height / 1.7 m
  ankle_height: np.ndarray  # (n,) ankle above the floor, metres
  upper_arm: np.ndarray  # (n,)
  forearm: np.ndarray  # (n,)
  rest_ankles_xz: np.ndarray  # (n, 2, 2) x, z of the two ankles in the rest pose

  def take(self, index: np.ndarray) -> "_Bodies":
    return _Bodies(*(getattr(self, f.name)[index] for f in dataclasses.fields(self)))

  @property
  def arm(self) -> np.ndarray:
    return self.upper_arm + self.forearm


def _make_performers(rng: np.random.Generator, num: int) -> tuple[_Bodies, np.ndarray]:
  """Bodies and styles `(num, 3)` (amplitude, speed, left-handed) of `num` performers."""
  height = rng.uniform(1.50, 1.92, num)
  # Per-segment proportions: torso, head, shoulder width, upper arm, forearm, hand, hip
  # width, thigh, shin.
  f = 1.0 + np.clip(rng.normal(0.0, 0.045, (num, 9)), -0.12, 0.12)
  h = height[:, None]
  torso, head, shoulder, upper, fore, hand, hips, thigh, shin = (f[:, i:i + 1] * h
                                                                   for i in range(9))
  off = np.zeros((num, 26, 3))

  def put(joint, x, y, z):
    off[:, joint] = np.concatenate([np.broadcast_to(c, (num, 1)) for c in (x, y, z)], 1)

  zero = np.zeros((num, 1))
  put(_SPINE_MID, zero, 0.125 * torso, zero)
  put(_SPINE_SHOULDER, zero, 0.150 * torso, zero)
  put(_NECK, zero, 0.040 * torso, zero)
  put(_HEAD, zero, 0.070 * head, -0.010 * head)
  for side in (-1, 1):
    sh, el, wr = _SHOULDER[side], _ELBOW[side], _WRIST[side]
    put(sh, side * 0.100 * shoulder, -0.025 * h, 0.010 * h)
    put(el, zero, -0.165 * upper, zero)
    put(wr, zero, -0.145 * fore, zero)
    put(wr + 1, zero, -0.045 * hand, zero)  # the hand joint
    tip, thumb = (21, 22) if side == -1 else (23, 24)
    put(tip, zero, -0.040 * hand, zero)
    put(thumb, -side * 0.008 * hand, -0.020 * hand, -0.025 * hand)
    hip = _HIP[side]
    put(hip, side * 0.055 * hips, -0.030 * h, zero)
    put(hip + 1, zero, -0.245 * thigh, zero)
    put(hip + 2, zero, -0.245 * shin, zero)
    put(hip + 3, zero, -0.030 * h, -0.070 * h)
  rest = _forward(off, _rotations(np.zeros((26, num, 1, 3))), trunk_only=True)[0][:, 0]
  bodies = _Bodies(
      offsets=off, scale=height / 1.7, ankle_height=0.045 * height,
      upper_arm=0.165 * upper[:, 0], forearm=0.145 * fore[:, 0],
      rest_ankles_xz=rest[:, list(_ANKLES)][:, :, [0, 2]])
  style = np.stack([rng.uniform(0.7, 1.3, num), rng.uniform(0.75, 1.3, num),
                    rng.random(num) < 0.15], 1)  # amplitude, speed, left-handed
  return bodies, style


def _rotations(angles: np.ndarray) -> np.ndarray:
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


def _joint_rotations(angles: np.ndarray) -> np.ndarray:
  """(n, T, 26, 3) joint angles -> (3, 3, 26, n, T) local rotations for `_forward`."""
  n, t = angles.shape[:2]
  out = np.zeros((3, 3, 26, n, t))
  for i in range(3):
    out[i, i] = 1.0
  moving = np.flatnonzero(np.any(angles != 0, axis=(0, 1, 3)))  # most joints rest
  out[:, :, moving] = _rotations(np.moveaxis(angles[:, :, moving], 2, 0))
  return out


def _euler(angles: np.ndarray) -> np.ndarray:
  """(..., 3) angles about x, y, z -> (..., 3, 3) rotations `Rz @ Ry @ Rx`."""
  return np.moveaxis(_rotations(angles), (0, 1), (-2, -1))


def _yaw(angle: np.ndarray) -> np.ndarray:
  """(...,) -> (..., 3, 3) rotation about y (x turns towards -z for positive angles)."""
  zero = np.zeros_like(angle)
  return _euler(np.stack([zero, angle, zero], -1))


def _apply(rotation: np.ndarray, vector: np.ndarray) -> np.ndarray:
  """(..., 3, 3) x (..., 3) -> (..., 3), broadcasting the leading axes."""
  return (rotation[..., 0] * vector[..., None, 0] + rotation[..., 1] * vector[..., None, 1]
          + rotation[..., 2] * vector[..., None, 2])


def _forward(offsets: np.ndarray, rotations: np.ndarray, trunk_only: bool = False
             ) -> tuple[np.ndarray, np.ndarray]:
  """Forward kinematics with the root at the origin.

  Args:
    offsets: (n, 26, 3) bone vectors, each in its parent's frame.
    rotations: (3, 3, 26, n, T) local joint rotations (`_joint_rotations`); joint j's
      rotation turns the bones of its children.
    trunk_only: skip elbows, wrists and hands (their positions are left at 0).
  Returns:
    positions (n, T, 26, 3) and global frames (n, T, 26, 3, 3) in the body frame; frames
    of joints without children (and skipped ones) are left as identity.
  """
  n, t = rotations.shape[-2:]
  pos = np.zeros((26, 3, n, t))
  frame = np.zeros((26, 3, 3, n, t))
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


def _ground(pos: np.ndarray, bodies: _Bodies, anchor, lift) -> np.ndarray:
  """Puts the feet on the floor (y = 0) and keeps the anchored ankles where they stood.

  anchor: weights of (left, right) ankle whose rest x, z position is kept; lift: (n, T)
  height above the grounded pose (jumps).
  """
  ankles = pos[:, :, list(_ANKLES)]  # (n, T, 2, 3)
  shift_y = bodies.ankle_height[:, None] - ankles[..., 1].min(-1) + lift
  w = np.broadcast_to(np.asarray(anchor, dtype=np.float64), ankles.shape[:3])
  drift = ankles[..., [0, 2]] - bodies.rest_ankles_xz[:, None]
  shift_xz = -(w[..., None] * drift).sum(2)
  shift = np.stack([shift_xz[..., 0], shift_y, shift_xz[..., 1]], -1)
  return pos + shift[:, :, None]


def _unit(v: np.ndarray, fallback: np.ndarray) -> np.ndarray:
  norm = np.linalg.norm(v, axis=-1, keepdims=True)
  return np.where(norm > 1e-6, v / np.maximum(norm, 1e-12), fallback)


def _arm_ik(target, pole, shoulder, chest, upper, fore):
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
  t = _apply(chest_t, target - shoulder)
  q = _apply(chest_t, pole)
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
  elbow_rot = _euler(np.stack([flex, zero, zero], -1))
  return shoulder_rot, elbow_rot


# --------------------------------------------------------------------------------------
# Motion building blocks.


def _ramp(u, a, b):
  """Smooth step from 0 at `a` to 1 at `b`."""
  x = np.clip((u - a) / np.maximum(b - a, 1e-6), 0.0, 1.0)
  return x * x * (3 - 2 * x)


def _bump(u, a, b, c, d):
  """0 before a, rising to 1 at b, held to c, back to 0 at d."""
  return _ramp(u, a, b) * (1 - _ramp(u, c, d))


def _lerp(a, b, w):
  return a + (b - a) * w[..., None]


def _vec(x, y, z):
  """Broadcasts components of shape (n, 1) or (n, T) or scalars to (n, T, 3)."""
  x, y, z = np.broadcast_arrays(*(np.asarray(c, dtype=np.float64) for c in (x, y, z)))
  return np.stack([x, y, z], -1)


@dataclasses.dataclass
class _Person:
  """One person's motion: angles (n, T, 26, 3), wrist targets and poles (n, T, 3) in the
  body frame, grounding, and placement (yaw (n, T), position (n, T, 3)) in the pair frame."""
  angles: np.ndarray
  anchor: tuple
  lift: np.ndarray
  trunk: tuple  # (positions, frames) from the angles with hanging arms
  targets: dict  # side -> (target, pole)
  yaw: np.ndarray | float = 0.0
  pos: np.ndarray | float = 0.0


class _Ctx:
  """What a class's motion function sees: phase, style, bodies and a random generator."""

  def __init__(self, u, amp, speed, active, bodies, partners, rng):
    self.u, self.amp, self.speed, self.active = u, amp, speed, active
    self.bodies, self.partners, self.rng = bodies, partners, rng
    self.n, self.t = u.shape

  def angles(self):
    return np.zeros((self.n, self.t, 26, 3))

  def uniform(self, low, high):
    return self.rng.uniform(low, high, (self.n, 1))

  def normal(self, scale):
    return self.rng.normal(0.0, scale, (self.n, 1, 3))

  def solve(self, angles, anchor=_ANCHOR_BOTH, lift=0.0, bodies=None):
    """Grounded positions and frames for `angles` (the arms hanging straight)."""
    bodies = self.bodies if bodies is None else bodies
    pos, frame = _forward(bodies.offsets, _joint_rotations(angles), trunk_only=True)
    return _ground(pos, bodies, anchor, np.broadcast_to(lift, (self.n, self.t))), frame

  def hang(self, trunk, side, bodies=None):
    """Wrist target and elbow pole of an arm hanging under gravity (elbow soft, backwards)."""
    bodies = self.bodies if bodies is None else bodies
    s, arm = bodies.scale[:, None], bodies.arm[:, None]
    shoulder = trunk[0][:, :, _SHOULDER[side]]
    target = shoulder + _vec(side * 0.035 * s, -0.955 * arm, -0.015 * s)
    return target, np.broadcast_to(np.array([side * 0.3, 0.0, 1.0]), target.shape)

  def mouth(self, trunk, side, bodies=None):
    """Wrist target that puts the hand at the mouth (follows the head's tilt)."""
    bodies = self.bodies if bodies is None else bodies
    s = bodies.scale[:, None]
    pos, frame = trunk
    mouth = pos[:, :, _HEAD] + _apply(frame[:, :, _NECK], _vec(0 * s, -0.045 * s, -0.085 * s))
    return mouth + _vec(side * 0.03 * s, -0.08 * s, -0.02 * s)

  def cycles(self, base_low, base_high, cap_frames=4.0):
    """Cycles over the action: a per-sample rate scaled by speed and active length."""
    n = self.uniform(base_low, base_high) * self.speed * self.active / 40.0
    return np.minimum(n, self.active / cap_frames)

  def person(self, angles, targets, trunk, anchor=_ANCHOR_BOTH, lift=0.0, yaw=0.0, pos=0.0):
    return _Person(angles, anchor, np.broadcast_to(lift, (self.n, self.t)), trunk, targets,
                   yaw, pos)


def _default_arms(ctx, trunk, bodies=None):
  return {side: ctx.hang(trunk, side, bodies) for side in (-1, 1)}


def _fidget(ctx: _Ctx, trunk, arm, side, prob=0.35):
  """Sometimes the free arm does something incidental for a while: a hand on the hip,
  scratching the head, touching the chin, a hand on the chest. arm: (target, pole)."""
  s = ctx.bodies.scale[:, None]
  pos = trunk[0]
  places = np.stack([
      pos[:, :, _HIP[side]] + _vec(side * 0.10 * s, 0.06 * s, 0.0 * s),
      pos[:, :, _HEAD] + _vec(side * 0.09 * s, 0.0 * s, 0.03 * s),
      ctx.mouth(trunk, side) + _vec(0.0 * s, -0.05 * s, 0.0 * s),
      pos[:, :, _SPINE_SHOULDER] + _vec(side * 0.03 * s, -0.16 * s, -0.14 * s)], 0)
  poles = np.array([[side, 0.0, 0.4], [side, -0.3, 0.0], [side * 0.6, -1, 0.2],
                    [side * 0.6, -1, 0.3]])
  which = ctx.rng.integers(0, 4, ctx.n)
  start, length = ctx.uniform(0.0, 0.6), ctx.uniform(0.25, 0.5)
  on = (ctx.rng.random((ctx.n, 1)) < prob) * _bump(ctx.u, start, start + 0.1,
                                                    start + length - 0.1, start + length)
  pick = places[which, np.arange(ctx.n)]
  return _lerp(arm[0], pick, on), _lerp(arm[1], poles[which][:, None], on)


def _drink(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  reach = _bump(u, 0.05 + j, 0.33 + j, 0.68 + j, 0.93)
  tilt = ctx.uniform(0.05, 0.4) * ctx.amp * _bump(u, 0.36 + j, 0.46 + j, 0.60 + j, 0.72 + j)
  ang = ctx.angles()
  ang[:, :, _NECK, 0] = tilt  # head back
  ang[:, :, _WRIST[1], 0] = -0.6 * tilt  # the cup tilts with it
  trunk = ctx.solve(ang)
  arms = _default_arms(ctx, trunk)
  rest, rest_pole = arms[1]
  s = ctx.bodies.scale[:, None]
  target = _lerp(rest, ctx.mouth(trunk, 1) + ctx.normal(0.025), reach)
  target[..., 2] -= 0.10 * s * np.sin(np.pi * reach)  # the hand arcs forward
  arms[1] = (target, _lerp(rest_pole, _vec(0.6, -1.0, 0.2), reach))
  arms[-1] = _fidget(ctx, trunk, arms[-1], -1)
  return [ctx.person(ang, arms, trunk)]


def _eat(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  hold = _bump(u, 0.0, 0.18 + j, 0.82 + j, 1.0)
  ang = ctx.angles()
  ang[:, :, _NECK, 0] = -0.15 * hold  # looks at the food
  ang[:, :, _LUMBAR, 0] = -0.06 * hold
  trunk = ctx.solve(ang)
  arms = _default_arms(ctx, trunk)
  s = ctx.bodies.scale[:, None]
  chest = trunk[0][:, :, _SPINE_SHOULDER]
  bites = np.round(ctx.uniform(1.5, 4.49) * np.minimum(ctx.speed, 1.1))
  window = np.clip((u - 0.2 - j) / 0.58, 0.0, 1.0)
  to_mouth = 0.5 * (1 - np.cos(2 * np.pi * bites * window))
  bowl = chest + _vec(0.06 * s, -0.30 * s, -0.30 * s) + ctx.normal(0.02)
  spoon = _lerp(bowl, ctx.mouth(trunk, 1), 0.9 * to_mouth)
  arms[1] = (_lerp(arms[1][0], spoon, hold), _lerp(arms[1][1], _vec(0.6, -1.0, 0.2), hold))
  # Half the time the other hand holds the plate.
  plate = chest + _vec(-0.08 * s, -0.33 * s, -0.28 * s) + ctx.normal(0.02)
  holds = hold * (ctx.rng.random((ctx.n, 1)) < 0.5)
  arms[-1] = _fidget(ctx, trunk, arms[-1], -1)
  arms[-1] = (_lerp(arms[-1][0], plate, holds),
              _lerp(arms[-1][1], _vec(-0.6, -1.0, 0.2), holds))
  return [ctx.person(ang, arms, trunk)]


def _brush_teeth(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  hold = _bump(u, 0.05, 0.22 + j, 0.80 + j, 0.97)
  inner = _bump(u, 0.22 + j, 0.28 + j, 0.74 + j, 0.80 + j)
  ang = ctx.angles()
  ang[:, :, _NECK, 0] = -0.05 * hold
  trunk = ctx.solve(ang)
  arms = _default_arms(ctx, trunk)
  strokes = ctx.cycles(4.0, 7.0, cap_frames=4.0)
  phase = ctx.uniform(0, 2 * np.pi)
  wave = ctx.uniform(0.01, 0.035) * ctx.amp * inner * np.sin(2 * np.pi * strokes * u + phase)
  target = ctx.mouth(trunk, 1) + ctx.normal(0.025) + _vec(wave, 0.3 * wave, 0.0 * wave)
  arms[1] = (_lerp(arms[1][0], target, hold), _lerp(arms[1][1], _vec(0.6, -1.0, 0.2), hold))
  arms[-1] = _fidget(ctx, trunk, arms[-1], -1)
  return [ctx.person(ang, arms, trunk)]


def _wave(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  up = _bump(u, 0.05, 0.25 + j, 0.80 + j, 0.97)
  inner = _bump(u, 0.22 + j, 0.30 + j, 0.72 + j, 0.82 + j)
  ang = ctx.angles()
  trunk = ctx.solve(ang)
  arms = _default_arms(ctx, trunk)
  s = ctx.bodies.scale[:, None]
  waves = ctx.cycles(2.0, 3.5, cap_frames=6.0)
  sway = 0.10 * ctx.amp * inner * np.sin(2 * np.pi * waves * u + ctx.uniform(0, 2 * np.pi))
  raised = (trunk[0][:, :, _SHOULDER[1]] + _vec(0.18 * s + sway, 0.28 * s, -0.10 * s)
            + ctx.normal(0.03))
  arms[1] = (_lerp(arms[1][0], raised, up), _lerp(arms[1][1], _vec(1.0, -0.4, 0.3), up))
  arms[-1] = _fidget(ctx, trunk, arms[-1], -1)
  return [ctx.person(ang, arms, trunk)]


def _clap(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  up = _bump(u, 0.03, 0.20 + j, 0.82 + j, 0.97)
  ang = ctx.angles()
  trunk = ctx.solve(ang)
  arms = _default_arms(ctx, trunk)
  s = ctx.bodies.scale[:, None]
  claps = ctx.cycles(3.0, 5.0, cap_frames=5.0)
  gap = 0.32 * ctx.amp * 0.5 * (1 + np.cos(2 * np.pi * claps * u + ctx.uniform(0, 2 * np.pi)))
  centre = trunk[0][:, :, _SPINE_SHOULDER] + _vec(0.0, -0.17 * s, -0.30 * s) + ctx.normal(0.03)
  for side in (-1, 1):
    target = centre + _vec(side * (0.5 * gap + 0.035 * s), 0.0 * s, 0.0 * s)
    arms[side] = (_lerp(arms[side][0], target, up),
                  _lerp(arms[side][1], _vec(side * 1.0, -0.8, 0.6), up))
  return [ctx.person(ang, arms, trunk)]


def _set_leg(ang, side, thigh, shin, foot=0.0, pelvis=0.0):
  """Leg angles from absolute pitches of thigh, shin and foot (positive: lower end
  forward) given the pelvis pitch."""
  hip = _HIP[side]
  ang[:, :, hip, 0] = thigh - pelvis
  ang[:, :, hip + 1, 0] = shin - thigh
  ang[:, :, hip + 2, 0] = foot - shin


def _kick(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  back = _bump(u, 0.15 + j, 0.32 + j, 0.32 + j, 0.45 + j)
  swing = ctx.amp * _bump(u, 0.36 + j, 0.50 + j, 0.55 + j, 0.85)
  ang = ctx.angles()
  thigh = -0.35 * back + 1.2 * swing
  shin = thigh - 1.1 * back - 0.4 * _bump(u, 0.55 + j, 0.65 + j, 0.70 + j, 0.85)
  _set_leg(ang, 1, thigh, shin, foot=shin - 0.3 * swing)
  _set_leg(ang, -1, 0.1 * swing, -0.1 * swing)  # support knee gives a little
  ang[:, :, _LUMBAR, 0] = 0.15 * swing  # leans back for balance
  trunk = ctx.solve(ang, anchor=_ANCHOR_LEFT)
  arms = _default_arms(ctx, trunk)
  arm, s = ctx.bodies.arm[:, None], ctx.bodies.scale[:, None]
  balance = np.maximum(back, swing)
  for side, fwd in ((-1, -0.40), (1, 0.25)):
    target = trunk[0][:, :, _SHOULDER[side]] + _vec(side * 0.15 * s, -0.80 * arm, fwd * arm)
    arms[side] = (_lerp(arms[side][0], target, balance), arms[side][1])
  return [ctx.person(ang, arms, trunk, anchor=_ANCHOR_LEFT)]


def _jump(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.03, 0.03)
  depth = ctx.uniform(0.45, 0.80) * ctx.amp
  crouch = depth * (_bump(u, 0.05, 0.30 + j, 0.30 + j, 0.42 + j)
                    + 0.6 * _bump(u, 0.62 + j, 0.70 + j, 0.72 + j, 0.90))
  flight = np.clip((u - 0.42 - j) / 0.20, 0.0, 1.0)
  height = ctx.uniform(0.12, 0.30) * ctx.amp
  lift = height * 4 * flight * (1 - flight)
  toes = -0.5 * np.sin(np.pi * flight)  # feet point down in the air
  ang = ctx.angles()
  lean = -0.5 * crouch
  ang[:, :, 0, 0] = lean
  for side in (-1, 1):
    _set_leg(ang, side, crouch, -0.6 * crouch, foot=toes, pelvis=lean)
  trunk = ctx.solve(ang, lift=lift)
  arms = _default_arms(ctx, trunk)
  arm, s = ctx.bodies.arm[:, None], ctx.bodies.scale[:, None]
  behind = _bump(u, 0.05, 0.28 + j, 0.30 + j, 0.38 + j)
  above = _bump(u, 0.32 + j, 0.45 + j, 0.55 + j, 0.75)
  for side in (-1, 1):
    shoulder = trunk[0][:, :, _SHOULDER[side]]
    rest = arms[side][0]
    target = _lerp(rest, shoulder + _vec(side * 0.05 * s, -0.85 * arm, 0.40 * arm), behind)
    target = _lerp(target, shoulder + _vec(side * 0.10 * s, 0.55 * arm, -0.45 * arm), above)
    arms[side] = (target, arms[side][1])
  return [ctx.person(ang, arms, trunk, lift=lift)]


def _sit_stand(ctx: _Ctx, standing_up: bool) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  # Progress from standing (0) to seated (1). Sitting down is slow at the end (the seat
  # is lowered onto); standing up starts with a fast forward lean.
  if standing_up:
    progress = 1 - _ramp(u, 0.12 + j, 0.80 + j) ** 0.8
    lean_peak = 0.62
  else:
    progress = _ramp(u, 0.10 + j, 0.88 + j) ** 1.25
    lean_peak = 0.40
  seat = ctx.uniform(1.20, 1.50)
  lean_shape = np.sin(np.pi * np.clip(progress, 0, 1) ** (np.log(0.5) / np.log(lean_peak)))
  lean = -(0.55 * ctx.amp * lean_shape + 0.10 * progress)
  ang = ctx.angles()
  ang[:, :, 0, 0] = lean
  ang[:, :, _NECK, 0] = -0.3 * lean  # the head stays level
  thigh = seat * progress
  for side in (-1, 1):
    _set_leg(ang, side, thigh, -0.15 * np.sin(np.pi * progress), pelvis=lean)
  trunk = ctx.solve(ang)
  arms = _default_arms(ctx, trunk)
  s = ctx.bodies.scale[:, None]
  pos = trunk[0]
  for side in (-1, 1):
    lap = 0.55 * pos[:, :, _HIP[side] + 1] + 0.45 * pos[:, :, _HIP[side]] + _vec(
        0.0 * s, 0.07 * s, -0.02 * s)
    arms[side] = (_lerp(arms[side][0], lap, _ramp(progress, 0.5, 1.0)), arms[side][1])
  return [ctx.person(ang, arms, trunk)]


def _bow(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  hold = ctx.uniform(0.45, 0.60)
  bend = ctx.uniform(0.45, 0.90) * ctx.amp * _bump(u, 0.10 + j, 0.38 + j, hold + j, 0.88)
  ang = ctx.angles()
  ang[:, :, 0, 0] = -0.40 * bend
  ang[:, :, _LUMBAR, 0] = -0.35 * bend
  ang[:, :, _SPINE_MID, 0] = -0.25 * bend
  ang[:, :, _NECK, 0] = -0.15 * bend
  for side in (-1, 1):
    _set_leg(ang, side, 0.1 * bend, 0.0, pelvis=-0.40 * bend)
  trunk = ctx.solve(ang)
  return [ctx.person(ang, _default_arms(ctx, trunk), trunk)]


def _punch(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  guard = _bump(u, 0.0, 0.18 + j, 0.85 + j, 1.0)
  punches = ctx.rng.integers(1, 3, (ctx.n, 1))
  starts = np.where(punches == 1, 0.40, 0.30) + j
  strike = _bump(u, starts, starts + 0.07, starts + 0.12, starts + 0.24)
  second = _bump(u, starts + 0.30, starts + 0.37, starts + 0.42, starts + 0.54)
  strike = np.maximum(strike, np.where(punches == 2, second, 0.0))
  ang = ctx.angles()
  ang[:, :, _SPINE_MID, 1] = 0.30 * strike  # the right shoulder turns forward
  trunk = ctx.solve(ang)
  arms = _default_arms(ctx, trunk)
  arm, s = ctx.bodies.arm[:, None], ctx.bodies.scale[:, None]
  chest = trunk[0][:, :, _SPINE_SHOULDER]
  for side in (-1, 1):
    fist = chest + _vec(side * 0.09 * s, 0.02 * s, -0.25 * s) + ctx.normal(0.02)
    target = _lerp(arms[side][0], fist, guard)
    pole = _lerp(arms[side][1], _vec(side * 0.5, -1.0, 0.3), guard)
    if side == 1:
      hit = trunk[0][:, :, _SHOULDER[1]] + _vec(-0.05 * s, 0.03 * s, -1.0 * arm)
      target = _lerp(target, hit, strike * ctx.amp.clip(0.85, 1.0))
    arms[side] = (target, pole)
  return [ctx.person(ang, arms, trunk)]


def _walk(ang, u, start, end, steps, stride):
  """Alternating leg swings between phases `start` and `end` (feet slide with the body)."""
  w = np.clip((u - start) / (end - start), 0, 1)
  env = np.sin(np.pi * w)
  for side, phase in ((-1, 0.0), (1, np.pi)):
    swing = stride * env * np.sin(2 * np.pi * steps * w + phase)
    hip = _HIP[side]
    ang[:, :, hip, 0] += swing
    ang[:, :, hip + 1, 0] -= 1.5 * np.maximum(swing, 0)


def _to_body(point, yaw, pos):
  """Pair-frame points (n, T, 3) into the body frame of a person at yaw, pos."""
  return _apply(np.swapaxes(_yaw(yaw), -1, -2), point - pos)


def _to_pair(point, yaw, pos):
  return _apply(_yaw(yaw), point) + pos


def _pair_placement(distance):
  """Yaw and position (n, T, 3) of two persons facing each other `distance` apart."""
  zero = np.zeros_like(distance)
  yaws = (np.full_like(distance, -np.pi / 2), np.full_like(distance, np.pi / 2))
  return yaws, (_vec(-distance / 2, zero, zero), _vec(distance / 2, zero, zero))


def _handshake(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  bodies = (ctx.bodies, ctx.partners)
  reach = 0.72 * (bodies[0].arm + bodies[1].arm)[:, None] * ctx.uniform(0.95, 1.08)
  distance = reach + ctx.uniform(0.2, 0.5) * (1 - _ramp(u, 0.0, 0.30 + j))
  yaws, poss = _pair_placement(distance)
  angles, trunks = [], []
  for who in (0, 1):
    ang = ctx.angles()
    _walk(ang, u, 0.0, 0.30 + j, 1.0, 0.2)
    angles.append(ang)
    trunks.append(ctx.solve(ang, _ANCHOR_NONE, bodies=bodies[who]))
  shoulders = [_to_pair(t[0][:, :, _SHOULDER[1]], yaws[w], poss[w]) for w, t in
               enumerate(trunks)]
  meet_y = 0.5 * (shoulders[0][..., 1] + shoulders[1][..., 1]) - 0.33 * ctx.bodies.scale[:, None]
  reach_out = _bump(u, 0.15 + j, 0.40 + j, 0.78 + j, 0.95)
  inner = _bump(u, 0.40 + j, 0.45 + j, 0.72 + j, 0.78 + j)
  pumps = ctx.cycles(2.0, 3.5, cap_frames=6.0)
  pump = 0.05 * ctx.amp * inner * np.sin(2 * np.pi * pumps * u)
  persons = []
  for who in (0, 1):
    meet = _vec(0.04 * (2 * who - 1) + 0 * u, meet_y + pump, 0 * u) + ctx.normal(0.01)
    arms = _default_arms(ctx, trunks[who], bodies[who])
    target = _to_body(meet, yaws[who], poss[who])
    arms[1] = (_lerp(arms[1][0], target, reach_out),
               _lerp(arms[1][1], _vec(0.6, -1.0, 0.3), reach_out))
    persons.append(ctx.person(angles[who], arms, trunks[who], _ANCHOR_NONE,
                              yaw=yaws[who], pos=poss[who]))
  return persons


def _hug(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  bodies = (ctx.bodies, ctx.partners)
  close = 0.17 * (bodies[0].scale + bodies[1].scale)[:, None] * ctx.uniform(0.95, 1.1)
  start = ctx.uniform(1.1, 1.5)
  distance = close + (start - close) * (1 - _ramp(u, 0.05, 0.45 + j))
  yaws, poss = _pair_placement(distance)
  angles, trunks = [], []
  for who in (0, 1):
    ang = ctx.angles()
    _walk(ang, u, 0.05, 0.45 + j, 1.0, 0.3)
    ang[:, :, _NECK, 1] = 0.35 * _bump(u, 0.35, 0.5, 0.8, 0.95)  # heads turn aside
    angles.append(ang)
    trunks.append(ctx.solve(ang, _ANCHOR_NONE, bodies=bodies[who]))
  embrace = _bump(u, 0.25 + j, 0.50 + j, 0.80 + j, 0.95)
  pat = 0.03 * _bump(u, 0.5 + j, 0.55 + j, 0.75 + j, 0.8 + j) * np.sin(
      2 * np.pi * ctx.cycles(2.0, 4.0, cap_frames=5.0) * u)
  persons = []
  for who in (0, 1):
    other = 1 - who
    arms = _default_arms(ctx, trunks[who], bodies[who])
    opos = trunks[other][0]
    s = bodies[other].scale[:, None]
    # One arm over the partner's shoulder, the other under the arm, mirrored.
    high = 1 if who == 0 else -1
    for side in (-1, 1):
      joint = _SPINE_SHOULDER if side == high else _SPINE_MID
      # The partner's side facing this person's `side` is the partner's `-side`.
      back = opos[:, :, joint] + _vec(-side * 0.10 * s, -0.05 * s + pat, 0.14 * s)
      target = _to_body(_to_pair(back, yaws[other], poss[other]), yaws[who], poss[who])
      arms[side] = (_lerp(arms[side][0], target, embrace),
                    _lerp(arms[side][1], _vec(side * 1.0, -0.5, 0.0), embrace))
    persons.append(ctx.person(angles[who], arms, trunks[who], _ANCHOR_NONE,
                              yaw=yaws[who], pos=poss[who]))
  return persons


def _push(ctx: _Ctx) -> list[_Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  bodies = (ctx.bodies, ctx.partners)
  start = 0.80 * bodies[0].arm[:, None] + 0.35 * ctx.uniform(0.9, 1.2)
  step = ctx.uniform(0.10, 0.20)
  shove = ctx.uniform(0.30, 0.60) * ctx.amp
  pusher_x = -start / 2 + step * _ramp(u, 0.20 + j, 0.40 + j)
  pushed_x = start / 2 + shove * _ramp(u, 0.36 + j, 0.70 + j)
  zero = np.zeros_like(u)
  yaws = (np.full_like(u, -np.pi / 2), np.full_like(u, np.pi / 2) + ctx.uniform(-0.2, 0.2)
          * _ramp(u, 0.36 + j, 0.7 + j))
  poss = (_vec(pusher_x, zero, zero), _vec(pushed_x, zero, zero))
  recoil = _bump(u, 0.36 + j, 0.44 + j, 0.50 + j, 0.75)
  pusher, pushed = ctx.angles(), ctx.angles()
  _walk(pusher, u, 0.18 + j, 0.42 + j, 0.5, 0.35)
  _walk(pushed, u, 0.36 + j, 0.75 + j, 1.0, 0.30)
  pushed[:, :, _LUMBAR, 0] = 0.30 * ctx.amp * recoil
  pushed[:, :, _NECK, 0] = -0.2 * recoil  # the head lags forward
  trunks = [ctx.solve(pusher, _ANCHOR_NONE, bodies=bodies[0]),
            ctx.solve(pushed, _ANCHOR_NONE, bodies=bodies[1])]
  s1 = bodies[1].scale[:, None]
  thrust = _bump(u, 0.18 + j, 0.38 + j, 0.50 + j, 0.80)
  arms0 = _default_arms(ctx, trunks[0], bodies[0])
  arms1 = _default_arms(ctx, trunks[1], bodies[1])
  chest = trunks[1][0][:, :, _SPINE_SHOULDER]
  for side in (-1, 1):
    # The pusher's `side` hand lands on the partner's `-side` chest.
    contact = chest + _vec(-side * 0.10 * s1, -0.12 * s1, -0.10 * s1)
    target = _to_body(_to_pair(contact, yaws[1], poss[1]), yaws[0], poss[0])
    arms0[side] = (_lerp(arms0[side][0], target, thrust),
                   _lerp(arms0[side][1], _vec(side * 0.7, -1.0, 0.3), thrust))
    flail = trunks[1][0][:, :, _SHOULDER[side]] + _vec(
        side * 0.15 * s1, -0.25 * bodies[1].arm[:, None], -0.45 * bodies[1].arm[:, None])
    arms1[side] = (_lerp(arms1[side][0], flail, recoil), arms1[side][1])
  return [ctx.person(pusher, arms0, trunks[0], _ANCHOR_NONE, yaw=yaws[0], pos=poss[0]),
          ctx.person(pushed, arms1, trunks[1], _ANCHOR_NONE, yaw=yaws[1], pos=poss[1])]


_MOTIONS: tuple[Callable[[_Ctx], list[_Person]], ...] = (
    _drink, _eat, _brush_teeth, _wave, _clap, _kick, _jump,
    lambda ctx: _sit_stand(ctx, standing_up=False),
    lambda ctx: _sit_stand(ctx, standing_up=True),
    _bow, _punch, _handshake, _hug, _push)


def _pose(ctx: _Ctx, person: _Person, bodies: _Bodies) -> np.ndarray:
  """Arms by inverse kinematics, then the full body: (n, T, 25, 3) in the pair frame."""
  rotations = _joint_rotations(person.angles)
  pos, frame = person.trunk
  for side, (target, pole) in person.targets.items():
    shoulder_rot, elbow_rot = _arm_ik(target, pole, pos[:, :, _SHOULDER[side]],
                                      frame[:, :, _SPINE_SHOULDER], bodies.upper_arm,
                                      bodies.forearm)
    rotations[:, :, _SHOULDER[side]] = np.moveaxis(shoulder_rot, (-2, -1), (0, 1))
    rotations[:, :, _ELBOW[side]] = np.moveaxis(elbow_rot, (-2, -1), (0, 1))
  pos = _ground(_forward(bodies.offsets, rotations)[0], bodies, person.anchor, person.lift)
  yaw = np.broadcast_to(person.yaw, (ctx.n, ctx.t))
  place = np.broadcast_to(person.pos, (ctx.n, ctx.t, 3))
  return _apply(_yaw(yaw)[:, :, None], pos[:, :, :NUM_JOINTS]) + place[:, :, None]


# --------------------------------------------------------------------------------------
# Sampling.


def _check_positive(name: str, value: int, minimum: int = 1):
  if int(value) != value or value < minimum:
    raise ValueError(f"synthetic data: {name} must be an integer >= {minimum}, got {value!r}.")


def _assign(rng, num_samples, num_classes, num_performers, num_views):
  """Balanced labels and unique (setup, view, performer, replication) per sample."""
  labels = rng.permutation(np.arange(num_samples) % num_classes)
  setup, view, performer, rep = (np.zeros(num_samples, np.int64) for _ in range(4))
  for c in range(num_classes):
    idx = np.flatnonzero(labels == c)
    k = np.arange(len(idx))
    # Views cycle exactly; performers in a random order per class; each (view,
    # performer) pair twice (replications), then the next setup.
    order = rng.permutation(num_performers)
    view[idx] = k % num_views + 1
    performer[idx] = order[(k // num_views) % num_performers] + 1
    rep[idx] = (k // (num_views * num_performers)) % 2 + 1
    setup[idx] = k // (2 * num_views * num_performers) + 1
  if setup.max(initial=1) > 999:
    raise ValueError(
        f"synthetic data: {num_samples} samples need more than 999 setups for "
        f"{num_performers} performers x {num_views} views; raise num_performers.")
  return labels, setup, view, performer, rep


def _partners(rng, performer, num_performers):
  """A partner for each two-person sample, from the same cross-performer half if possible."""
  train = set(xperformer_train_ids(num_performers))
  out = np.empty_like(performer)
  for i, p in enumerate(performer):
    pool = [q for q in range(1, num_performers + 1) if q != p and ((q in train) == (p in train))]
    pool = pool or [q for q in range(1, num_performers + 1) if q != p] or [p]
    out[i] = pool[rng.integers(len(pool))]
  return out


def _check_angle(name: str, value: float) -> None:
  if not 0.0 <= value <= 90.0:
    raise ValueError(f"synthetic data: {name} must be in [0, 90] degrees, got {value!r}.")


def view_rotations(num_samples: int, seed: int, elevation_degrees: float,
                   roll_degrees: float) -> np.ndarray:
  """`(N, 3, 3)` extra camera rotations of the harder variant: `R_z(roll) @ R_x(elevation)`.

  The elevation (about the camera's x axis: the subject seen from above or below) and the
  roll (about its optical axis) are uniform in `±elevation_degrees` and `±roll_degrees`,
  drawn from their own generator (`seed`, stream 1), so turning them on changes how each
  sample is seen and nothing else about it.
  """
  rng = np.random.default_rng([seed, 1])
  elevation = np.radians(rng.uniform(-elevation_degrees, elevation_degrees, num_samples))
  roll = np.radians(rng.uniform(-roll_degrees, roll_degrees, num_samples))
  return _euler(np.stack([elevation, np.zeros(num_samples), roll], -1))


def generate(num_samples: int, seed: int, num_frames: int = 50, num_performers: int = 20,
             num_views: int = 3, *, noise_std: float = 0.005, elevation_degrees: float = 0.0,
             roll_degrees: float = 0.0) -> tuple[np.ndarray, np.ndarray, list[str]]:
  """Generates synthetic skeleton action samples.

  Args:
    num_samples: N; labels are balanced over the 14 classes (counts differ by at most 1).
    seed: the whole output is a deterministic function of the arguments.
    num_frames: T; valid frames are 60-100 % of T, then zero padding.
    num_performers: performers 1..P, each with a fixed body and style.
    num_views: cameras 1..V (view 1 frontal, 2 at +45 deg, 3 at -45 deg, ...).
    noise_std: sensor noise in metres (hand tips and thumbs get 2.5x).
    elevation_degrees, roll_degrees: the harder variant's camera elevation and roll, each
      uniform in `±` this many degrees per sample (`view_rotations`), applied about the
      subject after the view's turn about the vertical. 0 (default): none, and the output
      is exactly that of the generator without these options.
  Returns:
    x: float32 `(N, 3, T, 25, 2)` (batch, xyz in metres in camera space, frames, joints in
      NTU order, persons); padded frames and an absent second person are exactly 0.
    labels: int64 `(N,)` class ids into `CLASS_NAMES`.
    names: `SsssCcccPpppRrrrAaaa` per sample (action = label + 1), unique.
  """
  _check_positive("num_samples", num_samples)
  _check_positive("num_frames", num_frames, 10)
  _check_positive("num_performers", num_performers, 2)
  _check_positive("num_views", num_views)
  if not noise_std >= 0:
    raise ValueError(f"synthetic data: noise_std must be >= 0 metres, got {noise_std!r}.")
  _check_angle("elevation_degrees", elevation_degrees)
  _check_angle("roll_degrees", roll_degrees)
  rng = np.random.default_rng(seed)
  bodies, style = _make_performers(rng, num_performers)
  labels, setup, view, performer, rep = _assign(rng, num_samples, len(CLASS_NAMES),
                                                num_performers, num_views)
  partner = _partners(rng, performer, num_performers)
  n, t = num_samples, num_frames
  length = rng.integers(int(np.ceil(0.6 * t)), t + 1, n)
  before = np.floor(rng.uniform(0.0, 0.15, n) * length)
  after = np.floor(rng.uniform(0.0, 0.15, n) * length)
  frames = np.arange(t)[None]
  active = (length - before - after)[:, None]
  tau = np.clip((frames - before[:, None]) / np.maximum(active - 1, 1), 0.0, 1.0)
  warp = rng.uniform(-0.5, 0.5, (n, 1))  # speed varies within the action
  u = tau + warp * np.sin(2 * np.pi * tau) / (2 * np.pi)
  amp = style[performer - 1, :1] * rng.uniform(0.8, 1.2, (n, 1))
  speed = style[performer - 1, 1:2] * rng.uniform(0.9, 1.1, (n, 1))
  # Left-handed performers, and now and then the other hand: one-person actions mirrored.
  mirror = (style[performer - 1, 2] > 0.5) ^ (rng.random(n) < 0.1)

  # Scene: the view turns the subject about the vertical through it, then placement in
  # front of the camera, slow sway, camera height and tilt: camera = tilt @ (yaw @ p + at).
  angle = np.array([view_angle(v) for v in view]) + rng.normal(0.0, np.radians(10), n)
  view_rotation = _yaw(angle)  # (n, 3, 3)
  if elevation_degrees or roll_degrees:
    view_rotation = view_rotations(n, seed, elevation_degrees, roll_degrees) @ view_rotation
  at = np.stack([rng.uniform(-0.4, 0.4, n), -rng.uniform(0.8, 1.4, n),
                 rng.uniform(2.4, 3.6, n)], 1)
  sway_rate = rng.uniform(0.5, 1.5, (n, 1, 3)) * 2 * np.pi / t
  at = at[:, None] + 0.012 * np.sin(sway_rate * frames[..., None]
                                    + rng.uniform(0, 2 * np.pi, (n, 1, 3)))  # (n, T, 3)
  tilt = rng.normal(0.0, np.radians(4), n)
  camera = _euler(np.stack([tilt, np.zeros(n), np.zeros(n)], -1))

  x = np.zeros((n, NUM_PERSONS, t, NUM_JOINTS, 3), np.float32)
  for c, motion in enumerate(_MOTIONS):
    idx = np.flatnonzero(labels == c)
    if not len(idx):
      continue
    ctx = _Ctx(u[idx], amp[idx], speed[idx], active[idx], bodies.take(performer[idx] - 1),
               bodies.take(partner[idx] - 1), rng)
    persons = motion(ctx)
    posed = [_pose(ctx, p, b) for p, b in zip(persons, (ctx.bodies, ctx.partners))]
    if len(posed) == 2:
      swap = (rng.random(len(idx)) < 0.5)[:, None, None, None]  # tracker order is arbitrary
      posed = [np.where(swap, posed[1 - m], posed[m]) for m in (0, 1)]
    else:
      mirrored = posed[0][:, :, _MIRROR] * np.array([-1.0, 1.0, 1.0])
      posed = [np.where(mirror[idx, None, None, None], mirrored, posed[0])]
    for m, p in enumerate(posed):
      scene = _apply(view_rotation[idx, None, None], p) + at[idx, :, None]
      x[idx, m] = _apply(camera[idx, None, None], scene)

  two = np.isin(labels, list(TWO_PERSON_CLASSES))
  if noise_std > 0:
    # Tracking glitches: a limb jumps off for a few frames in about a quarter of samples.
    glitch = rng.random((n, NUM_PERSONS)) < 0.25
    glitch[:, 1] &= two
    limb = rng.integers(0, len(_LIMBS), (n, NUM_PERSONS))
    start = rng.integers(0, t, (n, NUM_PERSONS))
    stop = start + rng.integers(2, 7, (n, NUM_PERSONS))
    jump = rng.normal(0.0, 15 * noise_std, (n, NUM_PERSONS, 3)).astype(np.float32)
    for k, joints in enumerate(_LIMBS):
      i, m = np.nonzero(glitch & (limb == k))
      when = (frames >= start[i, m, None]) & (frames < stop[i, m, None])  # (g, T)
      for v in joints:
        x[i, m, :, v] += when[..., None] * jump[i, m, None]
  scale = np.where(np.isin(np.arange(NUM_JOINTS), _FINGERS), 2.5 * noise_std, noise_std)
  x[:, 0] += rng.standard_normal(x[:, 0].shape, np.float32) * scale[:, None].astype(np.float32)
  x[two, 1] += rng.standard_normal(x[two, 1].shape, np.float32) * scale[:, None].astype(
      np.float32)
  x *= (frames < length[:, None])[:, None, :, None, None]
  x = np.ascontiguousarray(x.transpose(0, 4, 2, 3, 1))
  names = [f"S{s:03d}C{v:03d}P{p:03d}R{r:03d}A{a + 1:03d}"
           for s, v, p, r, a in zip(setup, view, performer, rep, labels)]
  return x, labels.astype(np.int64), names


# --------------------------------------------------------------------------------------
# Files.


def _field(name: str, key: str) -> int:
  at = name.find(key)
  return int(name[at + 1:at + 4])


def write_dataset(out_dir: str, num_samples: int = 4200, seed: int = 0, num_frames: int = 50,
                  benchmark: str = "xperformer", num_performers: int = 20,
                  num_views: int = 3, preprocess: bool = True, *,
                  elevation_degrees: float = 0.0, roll_degrees: float = 0.0) -> dict:
  """Writes `{train,val}_position.npy`, `{train,val}_label.pkl` and `manifest.json`.

  With `preprocess` (default) every sample goes through the field's 50-frame transform
  (`freqjax.data.transform.aimclr_transform`: centred on joint 21, valid frames resized to
  `num_frames`, rotated to the shoulder axis), exactly as `python -m freqjax.data.prepare`
  writes NTU; without it the raw camera-space sequences (zero-padded) are written.

  `{split}_position.npy` is float32 `(N, 3, T, 25, 2)`; `{split}_label.pkl` pickles
  `(sample_names, labels)` (lists of str and int) as the NTU preparation of
  ST-GCN/AimCLR does. Benchmarks: `xperformer` trains on the odd performer ids and
  validates on the even ones; `xview` trains on views 2..V and validates on view 1.
  `elevation_degrees`, `roll_degrees`: the harder variant (see `generate`), recorded in the
  manifest. Returns the manifest (counts per class per split, frames, seed, benchmark, ...).
  """
  if benchmark not in BENCHMARKS:
    raise ValueError(f"synthetic data: unknown benchmark {benchmark!r}; use one of "
                     f"{', '.join(BENCHMARKS)}.")
  if benchmark == "xview" and num_views < 2:
    raise ValueError("synthetic data: the xview benchmark needs num_views >= 2 (view 1 "
                     f"validates, the others train); got num_views={num_views}.")
  x, labels, names = generate(num_samples, seed, num_frames, num_performers, num_views,
                              elevation_degrees=elevation_degrees, roll_degrees=roll_degrees)
  if preprocess:
    x = np.stack([transform.aimclr_transform(sample, num_frames) for sample in x])
  if benchmark == "xperformer":
    train_ids = xperformer_train_ids(num_performers)
    is_train = np.array([_field(s, "P") in train_ids for s in names])
  else:
    train_ids = xview_train_ids(num_views)
    is_train = np.array([_field(s, "C") in train_ids for s in names])
  os.makedirs(out_dir, exist_ok=True)
  splits = {}
  for split, mask in (("train", is_train), ("val", ~is_train)):
    idx = np.flatnonzero(mask)
    np.save(os.path.join(out_dir, f"{split}_position.npy"), x[idx])
    with open(os.path.join(out_dir, f"{split}_label.pkl"), "wb") as f:
      pickle.dump(([names[i] for i in idx], [int(labels[i]) for i in idx]), f)
    splits[split] = {
        "num_samples": int(len(idx)),
        "per_class": np.bincount(labels[idx], minlength=len(CLASS_NAMES)).tolist()}
  manifest = {
      "dataset": "freqjax synthetic skeleton actions", "benchmark": benchmark, "seed": seed,
      "num_samples": num_samples, "num_frames": num_frames, "num_performers": num_performers,
      "num_views": num_views, "preprocessed": preprocess,
      "elevation_degrees": elevation_degrees, "roll_degrees": roll_degrees,
      ("train_performers" if benchmark == "xperformer" else "train_views"): train_ids,
      "class_names": list(CLASS_NAMES), "two_person_classes": sorted(TWO_PERSON_CLASSES),
      "splits": splits}
  with open(os.path.join(out_dir, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1)
  return manifest


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--num-samples", type=int, default=4200)
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--num-frames", type=int, default=50)
  parser.add_argument("--benchmark", choices=BENCHMARKS, default="xperformer")
  parser.add_argument("--raw", action="store_true",
                      help="write raw camera-space sequences, without the 50-frame transform")
  parser.add_argument("--elevation-degrees", type=float, default=0.0,
                      help="harder variant: camera elevation uniform in +-this (degrees)")
  parser.add_argument("--roll-degrees", type=float, default=0.0,
                      help="harder variant: camera roll uniform in +-this (degrees)")
  args = parser.parse_args(argv)
  manifest = write_dataset(args.out, args.num_samples, args.seed, args.num_frames,
                           args.benchmark, preprocess=not args.raw,
                           elevation_degrees=args.elevation_degrees,
                           roll_degrees=args.roll_degrees)
  print(f"wrote {args.out}: {manifest['splits']['train']['num_samples']} train, "
        f"{manifest['splits']['val']['num_samples']} val samples ({args.benchmark})")


if __name__ == "__main__":
  main()
