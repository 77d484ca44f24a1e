"""Drawing the samples: performers, who does what from which camera, and sensor noise.

`generate` runs the stages below in this order, all drawing from one random generator, so
the output is a deterministic function of the arguments:
1. performers: a body (`kinematics.draw_bodies`) and a style (amplitude, speed,
   handedness) each;
2. the roster: balanced labels, a unique (setup, view, performer, replication) per sample,
   a partner for the interactions;
3. timing: the valid length (60-100 % of T), idle frames before and after the action, a
   time warp of its phase;
4. manner: this sample's amplitude and speed, and whether it is mirrored (left hand);
5. cameras: the view's turn about the vertical (plus jitter and, optionally, the harder
   variant's elevation and roll), placement in front of the camera, slow sway, camera tilt;
6. the actions (`actions.ACTIONS`), posed and seen from the cameras;
7. sensor noise and tracking glitches, then zero padding after the valid frames.
"""
import dataclasses

import numpy as np

from freqjax.data.synthetic import actions, kinematics, motion, splits
from freqjax.data.synthetic.kinematics import NUM_JOINTS

NUM_PERSONS = 2
# Hand tips and thumbs: Kinect tracks them worst.
_FINGERS = (21, 22, 23, 24)
# Joint groups a Kinect tracker loses now and then (occlusion): arms and legs.
_LIMBS = ((4, 5, 6, 7, 21, 22), (8, 9, 10, 11, 23, 24), (12, 13, 14, 15), (16, 17, 18, 19))


def view_angle(view: int) -> float:
  """Base camera angle in radians: view 1 frontal, 2 at +45 deg, 3 at -45 deg, 4 at +90..."""
  step = (view // 2) * np.pi / 4
  return float(step if view % 2 == 0 else -step)


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
  return kinematics.euler(np.stack([elevation, np.zeros(num_samples), roll], -1))


def _check_positive(name: str, value: int, minimum: int = 1):
  if int(value) != value or value < minimum:
    raise ValueError(f"synthetic data: {name} must be an integer >= {minimum}, got {value!r}.")


def _check_angle(name: str, value: float) -> None:
  if not 0.0 <= value <= 90.0:
    raise ValueError(f"synthetic data: {name} must be in [0, 90] degrees, got {value!r}.")


def _check_arguments(num_samples, num_frames, num_performers, num_views, noise_std,
                     elevation_degrees, roll_degrees) -> None:
  _check_positive("num_samples", num_samples)
  _check_positive("num_frames", num_frames, 10)
  _check_positive("num_performers", num_performers, 2)
  _check_positive("num_views", num_views)
  if not noise_std >= 0:
    raise ValueError(f"synthetic data: noise_std must be >= 0 metres, got {noise_std!r}.")
  _check_angle("elevation_degrees", elevation_degrees)
  _check_angle("roll_degrees", roll_degrees)


@dataclasses.dataclass(frozen=True)
class Performers:
  """Performers 1..P: bodies and style, each `(P,)`."""
  bodies: kinematics.Bodies
  amplitude: np.ndarray  # how large their movements are, ~1
  speed: np.ndarray  # how fast they repeat (waves, strokes...), ~1
  left_handed: np.ndarray  # bool: one-person actions mirrored


def draw_performers(rng: np.random.Generator, num_performers: int) -> Performers:
  bodies = kinematics.draw_bodies(rng, num_performers)
  amplitude = rng.uniform(0.7, 1.3, num_performers)
  speed = rng.uniform(0.75, 1.3, num_performers)
  left_handed = rng.random(num_performers) < 0.15
  return Performers(bodies, amplitude, speed, left_handed)


@dataclasses.dataclass(frozen=True)
class Roster:
  """Who does what where, per sample: `(N,)` integer ids (label from 0, the others from 1)."""
  labels: np.ndarray
  setup: np.ndarray
  view: np.ndarray
  performer: np.ndarray
  replication: np.ndarray
  partner: np.ndarray  # the second person of the interactions


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
  train = set(splits.xperformer_train_ids(num_performers))
  out = np.empty_like(performer)
  for i, p in enumerate(performer):
    pool = [q for q in range(1, num_performers + 1) if q != p and ((q in train) == (p in train))]
    pool = pool or [q for q in range(1, num_performers + 1) if q != p] or [p]
    out[i] = pool[rng.integers(len(pool))]
  return out


def draw_roster(rng: np.random.Generator, num_samples: int, num_performers: int,
                num_views: int) -> Roster:
  labels, setup, view, performer, rep = _assign(rng, num_samples, len(actions.ACTIONS),
                                                num_performers, num_views)
  return Roster(labels, setup, view, performer, rep,
                partner=_partners(rng, performer, num_performers))


@dataclasses.dataclass(frozen=True)
class Timing:
  """When the action happens in each sample's T frames."""
  length: np.ndarray  # (N,) valid frames; the rest is zero padding
  active: np.ndarray  # (N, 1) frames of the action itself, between the idle ones
  phase: np.ndarray  # (N, T) the action's phase u in [0, 1], time-warped


def draw_timing(rng: np.random.Generator, num_samples: int, num_frames: int) -> Timing:
  n, t = num_samples, num_frames
  length = rng.integers(int(np.ceil(0.6 * t)), t + 1, n)
  before = np.floor(rng.uniform(0.0, 0.15, n) * length)
  after = np.floor(rng.uniform(0.0, 0.15, n) * length)
  frames = np.arange(t)[None]
  active = (length - before - after)[:, None]
  tau = np.clip((frames - before[:, None]) / np.maximum(active - 1, 1), 0.0, 1.0)
  warp = rng.uniform(-0.5, 0.5, (n, 1))  # speed varies within the action
  return Timing(length, active, phase=tau + warp * np.sin(2 * np.pi * tau) / (2 * np.pi))


@dataclasses.dataclass(frozen=True)
class Manner:
  """How each sample is performed."""
  amplitude: np.ndarray  # (N, 1)
  speed: np.ndarray  # (N, 1)
  mirrored: np.ndarray  # (N,) bool: a one-person action done with the other hand


def draw_manner(rng: np.random.Generator, performers: Performers,
                performer: np.ndarray) -> Manner:
  """The performer's style, varied per sample."""
  n = len(performer)
  amplitude = performers.amplitude[performer - 1][:, None] * rng.uniform(0.8, 1.2, (n, 1))
  speed = performers.speed[performer - 1][:, None] * rng.uniform(0.9, 1.1, (n, 1))
  # Left-handed performers, and now and then the other hand: one-person actions mirrored.
  mirrored = performers.left_handed[performer - 1] ^ (rng.random(n) < 0.1)
  return Manner(amplitude, speed, mirrored)


@dataclasses.dataclass(frozen=True)
class Cameras:
  """Where each sample is seen from: camera = tilt @ (turn @ p + at) for pair-frame p."""
  turn: np.ndarray  # (N, 3, 3) the view's rotation of the subject about itself
  at: np.ndarray  # (N, T, 3) the subject's place in front of the camera, swaying
  tilt: np.ndarray  # (N, 3, 3) the camera's own tilt

  def see(self, index: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pair-frame points `(len(index), T, V, 3)` of samples `index` -> camera space."""
    scene = kinematics.apply(self.turn[index, None, None], points) + self.at[index, :, None]
    return kinematics.apply(self.tilt[index, None, None], scene)


def draw_cameras(rng: np.random.Generator, view: np.ndarray, num_frames: int, seed: int,
                 elevation_degrees: float, roll_degrees: float) -> Cameras:
  """The view turns the subject about the vertical through it (harder variant: then
  elevation and roll, `view_rotations`), then placement in front of the camera, slow sway,
  camera height and tilt."""
  n, t = len(view), num_frames
  angle = np.array([view_angle(v) for v in view]) + rng.normal(0.0, np.radians(10), n)
  turn = kinematics.yaw(angle)  # (n, 3, 3)
  if elevation_degrees or roll_degrees:
    turn = view_rotations(n, seed, elevation_degrees, roll_degrees) @ turn
  at = np.stack([rng.uniform(-0.4, 0.4, n), -rng.uniform(0.8, 1.4, n),
                 rng.uniform(2.4, 3.6, n)], 1)
  frames = np.arange(t)[None]
  sway_rate = rng.uniform(0.5, 1.5, (n, 1, 3)) * 2 * np.pi / t
  at = at[:, None] + 0.012 * np.sin(sway_rate * frames[..., None]
                                    + rng.uniform(0, 2 * np.pi, (n, 1, 3)))  # (n, T, 3)
  tilt = rng.normal(0.0, np.radians(4), n)
  return Cameras(turn, at, tilt=kinematics.euler(np.stack([tilt, np.zeros(n), np.zeros(n)], -1)))


def perform(rng: np.random.Generator, roster: Roster, timing: Timing, manner: Manner,
            performers: Performers, cameras: Cameras) -> np.ndarray:
  """Every sample's action, posed and seen from its camera.

  Returns float32 `(N, 2, T, 25, 3)` (sample, person, frame, joint, xyz in metres); the
  second person of one-person samples is 0. Persons of an interaction come in random
  order, as a tracker lists them.
  """
  n, t = timing.phase.shape
  x = np.zeros((n, NUM_PERSONS, t, NUM_JOINTS, 3), np.float32)
  bodies = performers.bodies
  for c, action in enumerate(actions.ACTIONS):
    idx = np.flatnonzero(roster.labels == c)
    if not len(idx):
      continue
    ctx = motion.ActionContext(timing.phase[idx], manner.amplitude[idx], manner.speed[idx],
                               timing.active[idx], bodies.take(roster.performer[idx] - 1),
                               bodies.take(roster.partner[idx] - 1), rng)
    persons = action(ctx)
    posed = [motion.pose(ctx, p, b) for p, b in zip(persons, (ctx.bodies, ctx.partners))]
    if len(posed) == 2:
      swap = (rng.random(len(idx)) < 0.5)[:, None, None, None]  # tracker order is arbitrary
      posed = [np.where(swap, posed[1 - m], posed[m]) for m in (0, 1)]
    else:
      mirrored = posed[0][:, :, kinematics.MIRROR] * np.array([-1.0, 1.0, 1.0])
      posed = [np.where(manner.mirrored[idx, None, None, None], mirrored, posed[0])]
    for m, p in enumerate(posed):
      x[idx, m] = cameras.see(idx, p)
  return x


def add_sensor_noise(rng: np.random.Generator, x: np.ndarray, two_person: np.ndarray,
                     noise_std: float) -> None:
  """Adds the tracker's errors to `x` (float32 `(N, 2, T, 25, 3)`) in place.

  Gaussian noise of `noise_std` metres (2.5x on hand tips and thumbs) on every present
  person and, with noise on, in about a quarter of the samples a limb that jumps off for
  2-6 frames (tracking loss). two_person: `(N,)` bool, samples whose second person exists.
  """
  n, _, t = x.shape[:3]
  if noise_std > 0:
    frames = np.arange(t)[None]
    glitch = rng.random((n, NUM_PERSONS)) < 0.25
    glitch[:, 1] &= two_person
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
  scale = scale[:, None].astype(np.float32)  # (25, 1): per joint, over xyz
  x[:, 0] += rng.standard_normal(x[:, 0].shape, np.float32) * scale
  x[two_person, 1] += rng.standard_normal(x[two_person, 1].shape, np.float32) * scale


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
    labels: int64 `(N,)` class ids into `freqjax.text.classes.SYNTHETIC_CLASS_NAMES`.
    names: `SsssCcccPpppRrrrAaaa` per sample (action = label + 1), unique.
  """
  _check_arguments(num_samples, num_frames, num_performers, num_views, noise_std,
                   elevation_degrees, roll_degrees)
  rng = np.random.default_rng(seed)
  performers = draw_performers(rng, num_performers)
  roster = draw_roster(rng, num_samples, num_performers, num_views)
  timing = draw_timing(rng, num_samples, num_frames)
  manner = draw_manner(rng, performers, roster.performer)
  cameras = draw_cameras(rng, roster.view, num_frames, seed, elevation_degrees, roll_degrees)
  x = perform(rng, roster, timing, manner, performers, cameras)
  add_sensor_noise(rng, x, np.isin(roster.labels, list(actions.TWO_PERSON_CLASSES)), noise_std)
  x *= (np.arange(num_frames)[None] < timing.length[:, None])[:, None, :, None, None]
  x = np.ascontiguousarray(x.transpose(0, 4, 2, 3, 1))
  names = splits.sample_names(roster.setup, roster.view, roster.performer, roster.replication,
                              roster.labels)
  return x, roster.labels.astype(np.int64), names
