"""The 14 actions of the synthetic dataset, one function per class.

Each action maps an `ActionContext` (n samples of one class) to a list of `Person`s, one
per performer (two for the interactions): joint angles over the phase `u` in [0, 1] and,
for the arms, wrist targets (mouth, partner's hand, partner's chest...) reached by inverse
kinematics when posed (`motion.pose`). Body-frame and joint conventions: `kinematics`.
Every random draw goes through `ctx`, in a fixed order: the output is a deterministic
function of the generator's state.
"""
from typing import Callable

import numpy as np

from freqjax.data.synthetic import kinematics
from freqjax.data.synthetic.kinematics import (HEAD, HIP, LUMBAR, NECK, SHOULDER, SPINE_MID,
                                               SPINE_SHOULDER, WRIST)
from freqjax.data.synthetic.motion import (ANCHOR_LEFT, ANCHOR_NONE, ActionContext, Person, bump,
                                           hanging_arms, lerp, ramp, vec)

# The interactions (handshaking, hugging, pushing other person): two persons.
TWO_PERSON_CLASSES = frozenset({11, 12, 13})


def _fidget(ctx: ActionContext, trunk, arm, side, prob=0.35):
  """Sometimes the free arm does something incidental for a while: a hand on the hip,
  scratching the head, touching the chin, a hand on the chest. arm: (target, pole)."""
  s = ctx.bodies.scale[:, None]
  pos = trunk[0]
  places = np.stack([
      pos[:, :, HIP[side]] + vec(side * 0.10 * s, 0.06 * s, 0.0 * s),
      pos[:, :, HEAD] + vec(side * 0.09 * s, 0.0 * s, 0.03 * s),
      ctx.mouth(trunk, side) + vec(0.0 * s, -0.05 * s, 0.0 * s),
      pos[:, :, SPINE_SHOULDER] + vec(side * 0.03 * s, -0.16 * s, -0.14 * s)], 0)
  poles = np.array([[side, 0.0, 0.4], [side, -0.3, 0.0], [side * 0.6, -1, 0.2],
                    [side * 0.6, -1, 0.3]])
  which = ctx.rng.integers(0, 4, ctx.n)
  start, length = ctx.uniform(0.0, 0.6), ctx.uniform(0.25, 0.5)
  on = (ctx.rng.random((ctx.n, 1)) < prob) * bump(ctx.u, start, start + 0.1,
                                                  start + length - 0.1, start + length)
  pick = places[which, np.arange(ctx.n)]
  return lerp(arm[0], pick, on), lerp(arm[1], poles[which][:, None], on)


def drink_water(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  reach = bump(u, 0.05 + j, 0.33 + j, 0.68 + j, 0.93)
  tilt = ctx.uniform(0.05, 0.4) * ctx.amp * bump(u, 0.36 + j, 0.46 + j, 0.60 + j, 0.72 + j)
  ang = ctx.angles()
  ang[:, :, NECK, 0] = tilt  # head back
  ang[:, :, WRIST[1], 0] = -0.6 * tilt  # the cup tilts with it
  trunk = ctx.solve(ang)
  arms = hanging_arms(ctx, trunk)
  rest, rest_pole = arms[1]
  s = ctx.bodies.scale[:, None]
  target = lerp(rest, ctx.mouth(trunk, 1) + ctx.normal(0.025), reach)
  target[..., 2] -= 0.10 * s * np.sin(np.pi * reach)  # the hand arcs forward
  arms[1] = (target, lerp(rest_pole, vec(0.6, -1.0, 0.2), reach))
  arms[-1] = _fidget(ctx, trunk, arms[-1], -1)
  return [ctx.person(ang, arms, trunk)]


def eat_meal(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  hold = bump(u, 0.0, 0.18 + j, 0.82 + j, 1.0)
  ang = ctx.angles()
  ang[:, :, NECK, 0] = -0.15 * hold  # looks at the food
  ang[:, :, LUMBAR, 0] = -0.06 * hold
  trunk = ctx.solve(ang)
  arms = hanging_arms(ctx, trunk)
  s = ctx.bodies.scale[:, None]
  chest = trunk[0][:, :, SPINE_SHOULDER]
  bites = np.round(ctx.uniform(1.5, 4.49) * np.minimum(ctx.speed, 1.1))
  window = np.clip((u - 0.2 - j) / 0.58, 0.0, 1.0)
  to_mouth = 0.5 * (1 - np.cos(2 * np.pi * bites * window))
  bowl = chest + vec(0.06 * s, -0.30 * s, -0.30 * s) + ctx.normal(0.02)
  spoon = lerp(bowl, ctx.mouth(trunk, 1), 0.9 * to_mouth)
  arms[1] = (lerp(arms[1][0], spoon, hold), lerp(arms[1][1], vec(0.6, -1.0, 0.2), hold))
  # Half the time the other hand holds the plate.
  plate = chest + vec(-0.08 * s, -0.33 * s, -0.28 * s) + ctx.normal(0.02)
  holds = hold * (ctx.rng.random((ctx.n, 1)) < 0.5)
  arms[-1] = _fidget(ctx, trunk, arms[-1], -1)
  arms[-1] = (lerp(arms[-1][0], plate, holds),
              lerp(arms[-1][1], vec(-0.6, -1.0, 0.2), holds))
  return [ctx.person(ang, arms, trunk)]


def brush_teeth(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  hold = bump(u, 0.05, 0.22 + j, 0.80 + j, 0.97)
  inner = bump(u, 0.22 + j, 0.28 + j, 0.74 + j, 0.80 + j)
  ang = ctx.angles()
  ang[:, :, NECK, 0] = -0.05 * hold
  trunk = ctx.solve(ang)
  arms = hanging_arms(ctx, trunk)
  strokes = ctx.cycles(4.0, 7.0, cap_frames=4.0)
  phase = ctx.uniform(0, 2 * np.pi)
  wave = ctx.uniform(0.01, 0.035) * ctx.amp * inner * np.sin(2 * np.pi * strokes * u + phase)
  target = ctx.mouth(trunk, 1) + ctx.normal(0.025) + vec(wave, 0.3 * wave, 0.0 * wave)
  arms[1] = (lerp(arms[1][0], target, hold), lerp(arms[1][1], vec(0.6, -1.0, 0.2), hold))
  arms[-1] = _fidget(ctx, trunk, arms[-1], -1)
  return [ctx.person(ang, arms, trunk)]


def hand_waving(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  up = bump(u, 0.05, 0.25 + j, 0.80 + j, 0.97)
  inner = bump(u, 0.22 + j, 0.30 + j, 0.72 + j, 0.82 + j)
  ang = ctx.angles()
  trunk = ctx.solve(ang)
  arms = hanging_arms(ctx, trunk)
  s = ctx.bodies.scale[:, None]
  waves = ctx.cycles(2.0, 3.5, cap_frames=6.0)
  sway = 0.10 * ctx.amp * inner * np.sin(2 * np.pi * waves * u + ctx.uniform(0, 2 * np.pi))
  raised = (trunk[0][:, :, SHOULDER[1]] + vec(0.18 * s + sway, 0.28 * s, -0.10 * s)
            + ctx.normal(0.03))
  arms[1] = (lerp(arms[1][0], raised, up), lerp(arms[1][1], vec(1.0, -0.4, 0.3), up))
  arms[-1] = _fidget(ctx, trunk, arms[-1], -1)
  return [ctx.person(ang, arms, trunk)]


def clapping(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  up = bump(u, 0.03, 0.20 + j, 0.82 + j, 0.97)
  ang = ctx.angles()
  trunk = ctx.solve(ang)
  arms = hanging_arms(ctx, trunk)
  s = ctx.bodies.scale[:, None]
  claps = ctx.cycles(3.0, 5.0, cap_frames=5.0)
  gap = 0.32 * ctx.amp * 0.5 * (1 + np.cos(2 * np.pi * claps * u + ctx.uniform(0, 2 * np.pi)))
  centre = trunk[0][:, :, SPINE_SHOULDER] + vec(0.0, -0.17 * s, -0.30 * s) + ctx.normal(0.03)
  for side in (-1, 1):
    target = centre + vec(side * (0.5 * gap + 0.035 * s), 0.0 * s, 0.0 * s)
    arms[side] = (lerp(arms[side][0], target, up),
                  lerp(arms[side][1], vec(side * 1.0, -0.8, 0.6), up))
  return [ctx.person(ang, arms, trunk)]


def _set_leg(ang, side, thigh, shin, foot=0.0, pelvis=0.0):
  """Leg angles from absolute pitches of thigh, shin and foot (positive: lower end
  forward) given the pelvis pitch."""
  hip = HIP[side]
  ang[:, :, hip, 0] = thigh - pelvis
  ang[:, :, hip + 1, 0] = shin - thigh
  ang[:, :, hip + 2, 0] = foot - shin


def kicking_something(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  back = bump(u, 0.15 + j, 0.32 + j, 0.32 + j, 0.45 + j)
  swing = ctx.amp * bump(u, 0.36 + j, 0.50 + j, 0.55 + j, 0.85)
  ang = ctx.angles()
  thigh = -0.35 * back + 1.2 * swing
  shin = thigh - 1.1 * back - 0.4 * bump(u, 0.55 + j, 0.65 + j, 0.70 + j, 0.85)
  _set_leg(ang, 1, thigh, shin, foot=shin - 0.3 * swing)
  _set_leg(ang, -1, 0.1 * swing, -0.1 * swing)  # support knee gives a little
  ang[:, :, LUMBAR, 0] = 0.15 * swing  # leans back for balance
  trunk = ctx.solve(ang, anchor=ANCHOR_LEFT)
  arms = hanging_arms(ctx, trunk)
  arm, s = ctx.bodies.arm[:, None], ctx.bodies.scale[:, None]
  balance = np.maximum(back, swing)
  for side, fwd in ((-1, -0.40), (1, 0.25)):
    target = trunk[0][:, :, SHOULDER[side]] + vec(side * 0.15 * s, -0.80 * arm, fwd * arm)
    arms[side] = (lerp(arms[side][0], target, balance), arms[side][1])
  return [ctx.person(ang, arms, trunk, anchor=ANCHOR_LEFT)]


def jump_up(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.03, 0.03)
  depth = ctx.uniform(0.45, 0.80) * ctx.amp
  crouch = depth * (bump(u, 0.05, 0.30 + j, 0.30 + j, 0.42 + j)
                    + 0.6 * bump(u, 0.62 + j, 0.70 + j, 0.72 + j, 0.90))
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
  arms = hanging_arms(ctx, trunk)
  arm, s = ctx.bodies.arm[:, None], ctx.bodies.scale[:, None]
  behind = bump(u, 0.05, 0.28 + j, 0.30 + j, 0.38 + j)
  above = bump(u, 0.32 + j, 0.45 + j, 0.55 + j, 0.75)
  for side in (-1, 1):
    shoulder = trunk[0][:, :, SHOULDER[side]]
    rest = arms[side][0]
    target = lerp(rest, shoulder + vec(side * 0.05 * s, -0.85 * arm, 0.40 * arm), behind)
    target = lerp(target, shoulder + vec(side * 0.10 * s, 0.55 * arm, -0.45 * arm), above)
    arms[side] = (target, arms[side][1])
  return [ctx.person(ang, arms, trunk, lift=lift)]


def _sit_or_stand(ctx: ActionContext, standing_up: bool) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  # Progress from standing (0) to seated (1). Sitting down is slow at the end (the seat
  # is lowered onto); standing up starts with a fast forward lean.
  if standing_up:
    progress = 1 - ramp(u, 0.12 + j, 0.80 + j) ** 0.8
    lean_peak = 0.62
  else:
    progress = ramp(u, 0.10 + j, 0.88 + j) ** 1.25
    lean_peak = 0.40
  seat = ctx.uniform(1.20, 1.50)
  lean_shape = np.sin(np.pi * np.clip(progress, 0, 1) ** (np.log(0.5) / np.log(lean_peak)))
  lean = -(0.55 * ctx.amp * lean_shape + 0.10 * progress)
  ang = ctx.angles()
  ang[:, :, 0, 0] = lean
  ang[:, :, NECK, 0] = -0.3 * lean  # the head stays level
  thigh = seat * progress
  for side in (-1, 1):
    _set_leg(ang, side, thigh, -0.15 * np.sin(np.pi * progress), pelvis=lean)
  trunk = ctx.solve(ang)
  arms = hanging_arms(ctx, trunk)
  s = ctx.bodies.scale[:, None]
  pos = trunk[0]
  for side in (-1, 1):
    lap = 0.55 * pos[:, :, HIP[side] + 1] + 0.45 * pos[:, :, HIP[side]] + vec(
        0.0 * s, 0.07 * s, -0.02 * s)
    arms[side] = (lerp(arms[side][0], lap, ramp(progress, 0.5, 1.0)), arms[side][1])
  return [ctx.person(ang, arms, trunk)]


def bow(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  hold = ctx.uniform(0.45, 0.60)
  bend = ctx.uniform(0.45, 0.90) * ctx.amp * bump(u, 0.10 + j, 0.38 + j, hold + j, 0.88)
  ang = ctx.angles()
  ang[:, :, 0, 0] = -0.40 * bend
  ang[:, :, LUMBAR, 0] = -0.35 * bend
  ang[:, :, SPINE_MID, 0] = -0.25 * bend
  ang[:, :, NECK, 0] = -0.15 * bend
  for side in (-1, 1):
    _set_leg(ang, side, 0.1 * bend, 0.0, pelvis=-0.40 * bend)
  trunk = ctx.solve(ang)
  return [ctx.person(ang, hanging_arms(ctx, trunk), trunk)]


def punch(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  guard = bump(u, 0.0, 0.18 + j, 0.85 + j, 1.0)
  punches = ctx.rng.integers(1, 3, (ctx.n, 1))
  starts = np.where(punches == 1, 0.40, 0.30) + j
  strike = bump(u, starts, starts + 0.07, starts + 0.12, starts + 0.24)
  second = bump(u, starts + 0.30, starts + 0.37, starts + 0.42, starts + 0.54)
  strike = np.maximum(strike, np.where(punches == 2, second, 0.0))
  ang = ctx.angles()
  ang[:, :, SPINE_MID, 1] = 0.30 * strike  # the right shoulder turns forward
  trunk = ctx.solve(ang)
  arms = hanging_arms(ctx, trunk)
  arm, s = ctx.bodies.arm[:, None], ctx.bodies.scale[:, None]
  chest = trunk[0][:, :, SPINE_SHOULDER]
  for side in (-1, 1):
    fist = chest + vec(side * 0.09 * s, 0.02 * s, -0.25 * s) + ctx.normal(0.02)
    target = lerp(arms[side][0], fist, guard)
    pole = lerp(arms[side][1], vec(side * 0.5, -1.0, 0.3), guard)
    if side == 1:
      hit = trunk[0][:, :, SHOULDER[1]] + vec(-0.05 * s, 0.03 * s, -1.0 * arm)
      target = lerp(target, hit, strike * ctx.amp.clip(0.85, 1.0))
    arms[side] = (target, pole)
  return [ctx.person(ang, arms, trunk)]


def _walk(ang, u, start, end, steps, stride):
  """Alternating leg swings between phases `start` and `end` (feet slide with the body)."""
  w = np.clip((u - start) / (end - start), 0, 1)
  env = np.sin(np.pi * w)
  for side, phase in ((-1, 0.0), (1, np.pi)):
    swing = stride * env * np.sin(2 * np.pi * steps * w + phase)
    hip = HIP[side]
    ang[:, :, hip, 0] += swing
    ang[:, :, hip + 1, 0] -= 1.5 * np.maximum(swing, 0)


def _to_body(point, yaw, pos):
  """Pair-frame points (n, T, 3) into the body frame of a person at yaw, pos."""
  return kinematics.apply(np.swapaxes(kinematics.yaw(yaw), -1, -2), point - pos)


def _to_pair(point, yaw, pos):
  return kinematics.apply(kinematics.yaw(yaw), point) + pos


def _pair_placement(distance):
  """Yaw and position (n, T, 3) of two persons facing each other `distance` apart."""
  zero = np.zeros_like(distance)
  yaws = (np.full_like(distance, -np.pi / 2), np.full_like(distance, np.pi / 2))
  return yaws, (vec(-distance / 2, zero, zero), vec(distance / 2, zero, zero))


def handshaking(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  bodies = (ctx.bodies, ctx.partners)
  reach = 0.72 * (bodies[0].arm + bodies[1].arm)[:, None] * ctx.uniform(0.95, 1.08)
  distance = reach + ctx.uniform(0.2, 0.5) * (1 - ramp(u, 0.0, 0.30 + j))
  yaws, poss = _pair_placement(distance)
  angles, trunks = [], []
  for who in (0, 1):
    ang = ctx.angles()
    _walk(ang, u, 0.0, 0.30 + j, 1.0, 0.2)
    angles.append(ang)
    trunks.append(ctx.solve(ang, ANCHOR_NONE, bodies=bodies[who]))
  shoulders = [_to_pair(t[0][:, :, SHOULDER[1]], yaws[w], poss[w]) for w, t in
               enumerate(trunks)]
  meet_y = 0.5 * (shoulders[0][..., 1] + shoulders[1][..., 1]) - 0.33 * ctx.bodies.scale[:, None]
  reach_out = bump(u, 0.15 + j, 0.40 + j, 0.78 + j, 0.95)
  inner = bump(u, 0.40 + j, 0.45 + j, 0.72 + j, 0.78 + j)
  pumps = ctx.cycles(2.0, 3.5, cap_frames=6.0)
  pump = 0.05 * ctx.amp * inner * np.sin(2 * np.pi * pumps * u)
  persons = []
  for who in (0, 1):
    meet = vec(0.04 * (2 * who - 1) + 0 * u, meet_y + pump, 0 * u) + ctx.normal(0.01)
    arms = hanging_arms(ctx, trunks[who], bodies[who])
    target = _to_body(meet, yaws[who], poss[who])
    arms[1] = (lerp(arms[1][0], target, reach_out),
               lerp(arms[1][1], vec(0.6, -1.0, 0.3), reach_out))
    persons.append(ctx.person(angles[who], arms, trunks[who], ANCHOR_NONE,
                              yaw=yaws[who], pos=poss[who]))
  return persons


def hugging(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  bodies = (ctx.bodies, ctx.partners)
  close = 0.17 * (bodies[0].scale + bodies[1].scale)[:, None] * ctx.uniform(0.95, 1.1)
  start = ctx.uniform(1.1, 1.5)
  distance = close + (start - close) * (1 - ramp(u, 0.05, 0.45 + j))
  yaws, poss = _pair_placement(distance)
  angles, trunks = [], []
  for who in (0, 1):
    ang = ctx.angles()
    _walk(ang, u, 0.05, 0.45 + j, 1.0, 0.3)
    ang[:, :, NECK, 1] = 0.35 * bump(u, 0.35, 0.5, 0.8, 0.95)  # heads turn aside
    angles.append(ang)
    trunks.append(ctx.solve(ang, ANCHOR_NONE, bodies=bodies[who]))
  embrace = bump(u, 0.25 + j, 0.50 + j, 0.80 + j, 0.95)
  pat = 0.03 * bump(u, 0.5 + j, 0.55 + j, 0.75 + j, 0.8 + j) * np.sin(
      2 * np.pi * ctx.cycles(2.0, 4.0, cap_frames=5.0) * u)
  persons = []
  for who in (0, 1):
    other = 1 - who
    arms = hanging_arms(ctx, trunks[who], bodies[who])
    opos = trunks[other][0]
    s = bodies[other].scale[:, None]
    # One arm over the partner's shoulder, the other under the arm, mirrored.
    high = 1 if who == 0 else -1
    for side in (-1, 1):
      joint = SPINE_SHOULDER if side == high else SPINE_MID
      # The partner's side facing this person's `side` is the partner's `-side`.
      back = opos[:, :, joint] + vec(-side * 0.10 * s, -0.05 * s + pat, 0.14 * s)
      target = _to_body(_to_pair(back, yaws[other], poss[other]), yaws[who], poss[who])
      arms[side] = (lerp(arms[side][0], target, embrace),
                    lerp(arms[side][1], vec(side * 1.0, -0.5, 0.0), embrace))
    persons.append(ctx.person(angles[who], arms, trunks[who], ANCHOR_NONE,
                              yaw=yaws[who], pos=poss[who]))
  return persons


def pushing_other_person(ctx: ActionContext) -> list[Person]:
  u, j = ctx.u, ctx.uniform(-0.04, 0.04)
  bodies = (ctx.bodies, ctx.partners)
  start = 0.80 * bodies[0].arm[:, None] + 0.35 * ctx.uniform(0.9, 1.2)
  step = ctx.uniform(0.10, 0.20)
  shove = ctx.uniform(0.30, 0.60) * ctx.amp
  pusher_x = -start / 2 + step * ramp(u, 0.20 + j, 0.40 + j)
  pushed_x = start / 2 + shove * ramp(u, 0.36 + j, 0.70 + j)
  zero = np.zeros_like(u)
  yaws = (np.full_like(u, -np.pi / 2), np.full_like(u, np.pi / 2) + ctx.uniform(-0.2, 0.2)
          * ramp(u, 0.36 + j, 0.7 + j))
  poss = (vec(pusher_x, zero, zero), vec(pushed_x, zero, zero))
  recoil = bump(u, 0.36 + j, 0.44 + j, 0.50 + j, 0.75)
  pusher, pushed = ctx.angles(), ctx.angles()
  _walk(pusher, u, 0.18 + j, 0.42 + j, 0.5, 0.35)
  _walk(pushed, u, 0.36 + j, 0.75 + j, 1.0, 0.30)
  pushed[:, :, LUMBAR, 0] = 0.30 * ctx.amp * recoil
  pushed[:, :, NECK, 0] = -0.2 * recoil  # the head lags forward
  trunks = [ctx.solve(pusher, ANCHOR_NONE, bodies=bodies[0]),
            ctx.solve(pushed, ANCHOR_NONE, bodies=bodies[1])]
  s1 = bodies[1].scale[:, None]
  thrust = bump(u, 0.18 + j, 0.38 + j, 0.50 + j, 0.80)
  arms0 = hanging_arms(ctx, trunks[0], bodies[0])
  arms1 = hanging_arms(ctx, trunks[1], bodies[1])
  chest = trunks[1][0][:, :, SPINE_SHOULDER]
  for side in (-1, 1):
    # The pusher's `side` hand lands on the partner's `-side` chest.
    contact = chest + vec(-side * 0.10 * s1, -0.12 * s1, -0.10 * s1)
    target = _to_body(_to_pair(contact, yaws[1], poss[1]), yaws[0], poss[0])
    arms0[side] = (lerp(arms0[side][0], target, thrust),
                   lerp(arms0[side][1], vec(side * 0.7, -1.0, 0.3), thrust))
    flail = trunks[1][0][:, :, SHOULDER[side]] + vec(
        side * 0.15 * s1, -0.25 * bodies[1].arm[:, None], -0.45 * bodies[1].arm[:, None])
    arms1[side] = (lerp(arms1[side][0], flail, recoil), arms1[side][1])
  return [ctx.person(pusher, arms0, trunks[0], ANCHOR_NONE, yaw=yaws[0], pos=poss[0]),
          ctx.person(pushed, arms1, trunks[1], ANCHOR_NONE, yaw=yaws[1], pos=poss[1])]


def sit_down(ctx: ActionContext) -> list[Person]:
  return _sit_or_stand(ctx, standing_up=False)


def stand_up(ctx: ActionContext) -> list[Person]:
  return _sit_or_stand(ctx, standing_up=True)


# The motion of each class, indexed by label (`freqjax.text.classes.SYNTHETIC_CLASS_NAMES`).
ACTIONS: tuple[Callable[[ActionContext], list[Person]], ...] = (
    drink_water, eat_meal, brush_teeth, hand_waving, clapping, kicking_something, jump_up,
    sit_down, stand_up, bow, punch, handshaking, hugging, pushing_other_person)
