"""One sample of a data file as an animated skeleton (GIF), beside its augmented views.

The quickest check of a data file and of the augmentation settings:

  python -m freqjax.visualize skeleton --data-format aimclr --data-path data/ntu60/xsub \
      --split train --index 3 --out sample.gif --views

draws sample 3 as the model's input pipeline reads it (`freqjax.data.readers`, resampled
to `--num-frames`): both persons (an all-zero second person is skipped, and a person is
hidden in the frames where all its joints are zero), the bones of the NTU layout
(`freqjax.graph`), in axis-equal 3-D (y up, as Kinect camera space) or projected on the
x-y plane; with `--views`, the normal and extreme augmented views
(`freqjax.data.augment`) drawn from one key beside it. The title names the sample, its
label and class; each frame shows its index, so no two frames of a GIF are identical.
"""
from collections.abc import Mapping, Sequence
import functools
import inspect
import json
import os

import jax
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from freqjax import cli, graph
from freqjax.data import augment, readers
from freqjax.text import classes

# A GIF longer than this is subsampled evenly in time (keeps files around 1 MB or less).
MAX_FRAMES = 64
PERSON_COLORS = ("tab:blue", "tab:orange")
PROJECTIONS = ("3d", "2d")


class SkeletonInputError(cli.UserError, ValueError):
  """A sample, split or augmentation setting that does not exist."""


def frame_indices(num_frames: int, max_frames: int = MAX_FRAMES) -> np.ndarray:
  """`(min(num_frames, max_frames),)` int: every frame, or `max_frames` evenly spaced ones."""
  if num_frames <= max_frames:
    return np.arange(num_frames)
  return np.round(np.linspace(0, num_frames - 1, max_frames)).astype(np.int64)


def _accepted(view, kwargs: Mapping) -> dict:
  names = inspect.signature(view).parameters
  return {name: value for name, value in kwargs.items() if name in names}


def augmented_views(x: np.ndarray, seed: int = 0,
                    augment_kwargs: Mapping | None = None) -> dict[str, np.ndarray]:
  """The normal and extreme views of one sample, both drawn from `jax.random.key(seed)`.

  Args:
    x: `(3, T, V, M)` one sample (xyz, frames, joints, persons).
    seed: the key's seed.
    augment_kwargs: keyword arguments of `augment.normal_view` / `augment.extreme_view`
      (e.g. `shear_amplitude`, `padding_ratio`); each view gets the ones its signature
      takes, the rest keep `augment`'s defaults. A name neither takes is an error.

  Returns:
    `{"normal view": (3, T, V, M), "extreme view": (3, T, V, M)}` float32 numpy arrays.
  """
  augment_kwargs = dict(augment_kwargs or {})
  known = set(inspect.signature(augment.normal_view).parameters) | set(
      inspect.signature(augment.extreme_view).parameters)
  unknown = sorted(set(augment_kwargs) - known)
  if unknown:
    raise SkeletonInputError(f"augmentation setting {unknown[0]!r} is not a parameter of "
                     "freqjax.data.augment.normal_view or extreme_view; known: "
                     f"{', '.join(sorted(known - {'key', 'x'}))}.")
  normal = functools.partial(augment.normal_view, **_accepted(augment.normal_view,
                                                               augment_kwargs))
  extreme = functools.partial(augment.extreme_view, **_accepted(augment.extreme_view,
                                                                augment_kwargs))
  # One compiled program for both views: op by op they take several times longer.
  both = jax.jit(lambda key, x: {"normal view": normal(key, x),
                                 "extreme view": extreme(key, x)})
  views = both(jax.random.key(seed), np.asarray(x, dtype=np.float32))
  # jax returns dicts with sorted keys: restore the display order.
  return {name: np.asarray(views[name]) for name in ("normal view", "extreme view")}


def _limits(sample: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, float]:
  """Centre `(3,)` and half-width of a cube holding every non-zero joint of `frames`."""
  points = sample[:, frames].reshape(3, -1)
  present = np.any(points != 0, axis=0)
  points = points[:, present] if present.any() else np.zeros((3, 1))
  low, high = points.min(axis=1), points.max(axis=1)
  return (low + high) / 2, max(float((high - low).max()) / 2 * 1.05, 1e-3)


def write_skeleton_gif(panels: Sequence[tuple[str, np.ndarray]], out_path: str, *,
                       title: str = "", layout: graph.Layout = graph.NTU_RGBD,
                       projection: str = "3d", max_frames: int = MAX_FRAMES, dpi: int = 60,
                       fps: int = 10) -> int:
  """Writes side-by-side animated skeletons as a GIF; returns the number of frames.

  Args:
    panels: `(caption, sample)` pairs, each sample `(3, T, V, M)` (xyz, frames, joints,
      persons) with the same T; drawn left to right, each in its own axis-equal box.
    out_path: the `.gif` to write.
    title: the figure's title (each frame appends `frame t/T`).
    layout: the skeleton whose bones are drawn.
    projection: `3d` (x right, z depth, y up) or `2d` (x right, y up).
    max_frames: longer sequences are subsampled evenly to this many frames.
    dpi, fps: size and speed of the GIF.
  """
  if projection not in PROJECTIONS:
    raise SkeletonInputError(f"projection {projection!r}: use one of {', '.join(PROJECTIONS)}.")
  num_frames = panels[0][1].shape[1]
  frames = frame_indices(num_frames, max_frames)
  # One polyline per person: each bone's two joints, then a NaN that breaks the line.
  bone_path = np.array([[a, b, -1] for a, b in layout.edges]).reshape(-1)
  fig = Figure(figsize=(max(3.0 * len(panels), 4.0), 3.6))
  FigureCanvasAgg(fig)
  people = []  # (coordinates (3, T, V), axes order, bones line, joints line)
  for i, (caption, sample) in enumerate(panels):
    center, half = _limits(sample, frames)
    persons = [m for m in range(sample.shape[-1]) if np.any(sample[..., m] != 0)]
    if projection == "3d":
      ax = fig.add_subplot(1, len(panels), i + 1, projection="3d")
      # Matplotlib's vertical axis is its z: plot (x, z, y) so the body's y is up.
      order = (0, 2, 1)
      for set_lim, axis in zip((ax.set_xlim, ax.set_ylim, ax.set_zlim), order):
        set_lim(center[axis] - half, center[axis] + half)
      ax.set_box_aspect((1, 1, 1), zoom=1.15)
      ax.view_init(elev=15, azim=-70)
      # Tick labels would cost most of the drawing time and say little here.
      for axis, label in zip((ax.xaxis, ax.yaxis, ax.zaxis), "xzy"):
        axis.set_ticklabels([])
        axis.pane.fill = False  # white panes: GIF frames compress far better
        axis.set_label_text(label, fontsize=8)
        axis.labelpad = -12
    else:
      ax = fig.add_subplot(1, len(panels), i + 1)
      order = (0, 1)
      ax.set_xlim(center[0] - half, center[0] + half)
      ax.set_ylim(center[1] - half, center[1] + half)
      ax.set_aspect("equal")
      ax.set_xlabel("x", fontsize=8)
      ax.set_ylabel("y", fontsize=8)
      ax.tick_params(labelsize=6)
    ax.set_title(caption, fontsize=9)
    for m in persons:
      color = PERSON_COLORS[m % len(PERSON_COLORS)]
      empty = [[np.nan]] * len(order)
      bones = ax.plot(*empty, color=color, lw=1.5)[0]
      joints = ax.plot(*empty, "o", color=color, ms=2)[0]
      people.append((sample[..., m], order, bones, joints))
  suptitle = fig.suptitle("", fontsize=8)
  fig.subplots_adjust(left=0.02, right=0.98, bottom=0.04, top=0.78, wspace=0.1)

  writer = PillowWriter(fps=fps)
  with writer.saving(fig, out_path, dpi):
    for t in frames:
      for person, order, bones, joints in people:
        pose = person[:, t]  # (3, V)
        # An all-zero pose is padding or an untracked person: draw nothing.
        visible = bool(np.any(pose != 0))
        padded = np.concatenate([pose, np.full((3, 1), np.nan)], axis=1)
        path = [padded[axis, bone_path] for axis in order]
        points = [pose[axis] for axis in order]
        if len(order) == 3:
          bones.set_data_3d(*path)
          joints.set_data_3d(*points)
        else:
          bones.set_data(*path)
          joints.set_data(*points)
        bones.set_visible(visible)
        joints.set_visible(visible)
      suptitle.set_text(f"{title}\nframe {t + 1}/{num_frames}".lstrip("\n"))
      writer.grab_frame()
  return len(frames)


def guess_class_names(data_path: str, num_classes: int) -> list[str] | None:
  """Class names from a `manifest.json` beside the data (freqjax's prepare and synthetic
  data write one), else NTU-60/120's or PKU-MMD's table by class count, else None."""
  directory = data_path if os.path.isdir(data_path) else os.path.dirname(data_path)
  manifest = os.path.join(directory, "manifest.json")
  if os.path.isfile(manifest):
    try:
      with open(manifest, encoding="utf-8") as f:
        names = json.load(f).get("class_names")
    except (OSError, ValueError, AttributeError):
      names = None
    if names and len(names) == num_classes:
      return list(names)
  tables = {len(names): names for names in classes.CLASS_TABLES.values()}
  return list(tables[num_classes]) if num_classes in tables else None


def animate_sample(data_format: str, data_path: str, split: str, index: int, out_path: str,
                   *, views: bool = False, projection: str = "3d",
                   num_frames: int | None = 50, seed: int = 0,
                   augment_kwargs: Mapping | None = None,
                   class_names: Sequence[str] | None = None,
                   max_frames: int = MAX_FRAMES, dpi: int = 60) -> str:
  """Writes sample `index` of a data file as an animated GIF; returns a one-line summary.

  Args:
    data_format, data_path, split: as `data.format`, `data.path`, `data.split`
      (`freqjax.data.readers.load_dataset`).
    index: the sample's row in the split.
    out_path: the `.gif` to write.
    views: also draw the normal and extreme augmented views (see `augmented_views`).
    projection: `3d` or `2d`.
    num_frames: T the sample is resampled to, as `data.num_frames` (None: as stored).
    seed: the augmentation key's seed.
    augment_kwargs: augmentation settings passed to the views (default: `augment`'s).
    class_names: names by label; None guesses them (`guess_class_names`).
    max_frames, dpi: GIF length cap and resolution.
  """
  try:
    dataset = readers.load_dataset(data_format, data_path, split, num_frames=num_frames)
  except ValueError as error:  # an unknown format or split: the user's to fix
    raise SkeletonInputError(str(error)) from None
  if not 0 <= index < len(dataset):
    raise SkeletonInputError(f"{data_path}: --index {index} is outside split {split!r}, which has "
                     f"{len(dataset)} samples (0..{len(dataset) - 1}).")
  sample = dataset.read(np.array([index]))[0]
  label = int(dataset.labels[index])
  if class_names is None:
    class_names = guess_class_names(data_path, dataset.num_classes)
  name = f": {class_names[label]}" if class_names and label < len(class_names) else ""
  title = f"{dataset.sample_names[index]} (#{index} of {split})\nlabel {label}{name}"
  panels = [("sample", sample)]
  if views:
    panels += list(augmented_views(sample, seed, augment_kwargs).items())
  out_dir = os.path.dirname(os.path.abspath(out_path))
  os.makedirs(out_dir, exist_ok=True)
  written = write_skeleton_gif(panels, out_path, title=title, projection=projection,
                               max_frames=max_frames, dpi=dpi)
  return f"{out_path}: {written} frames of " + title.replace("\n", ", ")
