"""What an action is made of: phase curves, a person's motion and its pose.

An action (`actions.py`) sees an `ActionContext` (phase, style, bodies, random generator)
and returns one `Person` per performer: joint angles over the phase, wrist targets with
elbow poles for the arms, how the feet are grounded and where the person stands. `pose`
turns a `Person` into joint positions: the arms by inverse kinematics, then the whole body
by forward kinematics, so bone lengths stay exactly constant.
"""
import dataclasses

import numpy as np

from freqjax.data.synthetic import kinematics
from freqjax.data.synthetic.kinematics import (ELBOW, HEAD, NECK, NUM_JOINTS, NUM_NODES,
                                               SHOULDER, SPINE_SHOULDER)

# Grounding anchors: weights of the (left, right) ankle whose rest x, z position is kept.
ANCHOR_BOTH = (0.5, 0.5)
ANCHOR_LEFT = (1.0, 0.0)
ANCHOR_NONE = (0.0, 0.0)


def ramp(u, a, b):
  """Smooth step from 0 at `a` to 1 at `b`."""
  x = np.clip((u - a) / np.maximum(b - a, 1e-6), 0.0, 1.0)
  return x * x * (3 - 2 * x)


def bump(u, a, b, c, d):
  """0 before a, rising to 1 at b, held to c, back to 0 at d."""
  return ramp(u, a, b) * (1 - ramp(u, c, d))


def lerp(a, b, w):
  return a + (b - a) * w[..., None]


def vec(x, y, z):
  """Broadcasts components of shape (n, 1) or (n, T) or scalars to (n, T, 3)."""
  x, y, z = np.broadcast_arrays(*(np.asarray(c, dtype=np.float64) for c in (x, y, z)))
  return np.stack([x, y, z], -1)


@dataclasses.dataclass
class Person:
  """One person's motion: angles (n, T, 26, 3), wrist targets and poles (n, T, 3) in the
  body frame, grounding, and placement (yaw (n, T), position (n, T, 3)) in the pair frame."""
  angles: np.ndarray
  anchor: tuple
  lift: np.ndarray
  trunk: tuple  # (positions, frames) from the angles with hanging arms
  targets: dict  # side -> (target, pole)
  yaw: np.ndarray | float = 0.0
  pos: np.ndarray | float = 0.0


class ActionContext:
  """What an action sees for its n samples: phase `u` (n, T) in [0, 1], amplitude and
  speed (n, 1), active length in frames (n, 1), the performers' and partners' bodies, and
  the generator's random state."""

  def __init__(self, u, amp, speed, active, bodies, partners, rng):
    self.u, self.amp, self.speed, self.active = u, amp, speed, active
    self.bodies, self.partners, self.rng = bodies, partners, rng
    self.n, self.t = u.shape

  def angles(self):
    return np.zeros((self.n, self.t, NUM_NODES, 3))

  def uniform(self, low, high):
    return self.rng.uniform(low, high, (self.n, 1))

  def normal(self, scale):
    return self.rng.normal(0.0, scale, (self.n, 1, 3))

  def solve(self, angles, anchor=ANCHOR_BOTH, lift=0.0, bodies=None):
    """Grounded positions and frames for `angles` (the arms hanging straight)."""
    bodies = self.bodies if bodies is None else bodies
    pos, frame = kinematics.forward(bodies.offsets, kinematics.joint_rotations(angles),
                                    trunk_only=True)
    lift = np.broadcast_to(lift, (self.n, self.t))
    return kinematics.ground(pos, bodies, anchor, lift), frame

  def hang(self, trunk, side, bodies=None):
    """Wrist target and elbow pole of an arm hanging under gravity (elbow soft, backwards)."""
    bodies = self.bodies if bodies is None else bodies
    s, arm = bodies.scale[:, None], bodies.arm[:, None]
    shoulder = trunk[0][:, :, SHOULDER[side]]
    target = shoulder + vec(side * 0.035 * s, -0.955 * arm, -0.015 * s)
    return target, np.broadcast_to(np.array([side * 0.3, 0.0, 1.0]), target.shape)

  def mouth(self, trunk, side, bodies=None):
    """Wrist target that puts the hand at the mouth (follows the head's tilt)."""
    bodies = self.bodies if bodies is None else bodies
    s = bodies.scale[:, None]
    pos, frame = trunk
    mouth = pos[:, :, HEAD] + kinematics.apply(frame[:, :, NECK],
                                               vec(0 * s, -0.045 * s, -0.085 * s))
    return mouth + vec(side * 0.03 * s, -0.08 * s, -0.02 * s)

  def cycles(self, base_low, base_high, cap_frames=4.0):
    """Cycles over the action: a per-sample rate scaled by speed and active length."""
    n = self.uniform(base_low, base_high) * self.speed * self.active / 40.0
    return np.minimum(n, self.active / cap_frames)

  def person(self, angles, targets, trunk, anchor=ANCHOR_BOTH, lift=0.0, yaw=0.0, pos=0.0):
    return Person(angles, anchor, np.broadcast_to(lift, (self.n, self.t)), trunk, targets,
                  yaw, pos)


def hanging_arms(ctx: ActionContext, trunk, bodies=None) -> dict:
  """side -> (wrist target, elbow pole) of both arms hanging (`ActionContext.hang`)."""
  return {side: ctx.hang(trunk, side, bodies) for side in (-1, 1)}


def pose(ctx: ActionContext, person: Person, bodies: kinematics.Bodies) -> np.ndarray:
  """Arms by inverse kinematics, then the full body: (n, T, 25, 3) in the pair frame."""
  rotations = kinematics.joint_rotations(person.angles)
  pos, frame = person.trunk
  for side, (target, pole) in person.targets.items():
    shoulder_rot, elbow_rot = kinematics.arm_ik(target, pole, pos[:, :, SHOULDER[side]],
                                                frame[:, :, SPINE_SHOULDER], bodies.upper_arm,
                                                bodies.forearm)
    rotations[:, :, SHOULDER[side]] = np.moveaxis(shoulder_rot, (-2, -1), (0, 1))
    rotations[:, :, ELBOW[side]] = np.moveaxis(elbow_rot, (-2, -1), (0, 1))
  pos = kinematics.ground(kinematics.forward(bodies.offsets, rotations)[0], bodies,
                          person.anchor, person.lift)
  yaw = np.broadcast_to(person.yaw, (ctx.n, ctx.t))
  place = np.broadcast_to(person.pos, (ctx.n, ctx.t, 3))
  return (kinematics.apply(kinematics.yaw(yaw)[:, :, None], pos[:, :, :NUM_JOINTS])
          + place[:, :, None])
