"""NTU RGB+D 60/120: the raw `.skeleton` text format, sample names and benchmark splits.

A `.skeleton` file (Kinect v2, one per sample) reads, one item per line:

    frame count
    per frame:  body count B
      per body: 10 values (bodyID, clippedEdges, handLeftConfidence, handLeftState,
                handRightConfidence, handRightState, isRestricted, leanX, leanY,
                trackingState)
                joint count (25)
                25 lines of 12 values (x, y, z, depthX, depthY, colorX, colorY,
                orientationW, orientationX, orientationY, orientationZ, trackingState)

`read_skeleton` keeps x, y, z (metres, camera space) of the first two bodies *listed in
each frame*, in file order, as st-gcn/SkeletonCLR/AimCLR's `tools/utils/ntu_read_skeleton.py`
(`read_xyz`) does: body slot m of frame t is the m-th body that frame lists; bodyIDs are
not tracked across frames, and bodies past the second are parsed (and checked) but
dropped. Every value must parse and be finite; anything else raises `DataFormatError`
naming the file and line.

Sample names are `SsssCcccPpppRrrrAaaa` (setup, camera, performer, replication, action;
label = action - 1). NTU-60 is setups 1-17 (actions 1-60), NTU-120 setups 1-32 (actions
1-120). The benchmark splits are those of the dataset papers, as AimCLR's
`tools/ntu_gendata.py` and the NTU-120 paper list them (`is_training`).
"""
import dataclasses
import os
import re

import numpy as np

from freqjax.data.errors import DataFormatError, first_bad_row

NUM_JOINTS = 25
MAX_BODIES = 2
SPLITS = ("train", "val")  # AimCLR's names for the training and test parts
NUM_CLASSES = {"ntu60": 60, "ntu120": 120}
BENCHMARKS = {"ntu60": ("xsub", "xview"), "ntu120": ("xsub", "xset")}
NTU60_LAST_SETUP = 17

NTU60_XSUB_TRAIN_PERFORMERS = frozenset(
    (1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
NTU120_XSUB_TRAIN_PERFORMERS = NTU60_XSUB_TRAIN_PERFORMERS | frozenset(
    (45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85,
     86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103))
NTU60_XVIEW_TRAIN_CAMERAS = frozenset((2, 3))

_NAME = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")
_SUFFIX = ".skeleton"
_BODY_INFO_VALUES = 10
_JOINT_VALUES = 12


@dataclasses.dataclass(frozen=True)
class SampleName:
  """The fields of an NTU sample name `SsssCcccPpppRrrrAaaa` (all 1-based ids)."""
  setup: int
  camera: int
  performer: int
  replication: int
  action: int

  @property
  def label(self) -> int:
    """0-based class id."""
    return self.action - 1


def parse_sample_name(name: str | os.PathLike) -> SampleName:
  """Parses `SsssCcccPpppRrrrAaaa`, given bare, as a file name or as a path.

  Raises:
    DataFormatError: the name is not of that form.
  """
  stem = os.path.basename(os.fspath(name))
  if stem.endswith(_SUFFIX):
    stem = stem[:-len(_SUFFIX)]
  match = _NAME.fullmatch(stem)
  if match is None:
    raise DataFormatError(name, "not an NTU sample name SsssCcccPpppRrrrAaaa "
                          "(e.g. S001C002P003R002A013.skeleton)")
  return SampleName(*(int(group) for group in match.groups()))


def _check_dataset(dataset: str) -> None:
  if dataset not in BENCHMARKS:
    raise ValueError(f"unknown NTU dataset {dataset!r}: choose from {sorted(BENCHMARKS)}")


def in_dataset(sample: SampleName, dataset: str) -> bool:
  """Whether `sample` belongs to `dataset` ('ntu60': setups 1-17; 'ntu120': all)."""
  _check_dataset(dataset)
  return dataset == "ntu120" or sample.setup <= NTU60_LAST_SETUP


def check_action(sample: SampleName, dataset: str, path: str | os.PathLike) -> None:
  """Raises `DataFormatError` naming `path` if the action is not a class of `dataset`."""
  _check_dataset(dataset)
  if not 1 <= sample.action <= NUM_CLASSES[dataset]:
    raise DataFormatError(path, f"action A{sample.action:03d} is outside {dataset}'s classes "
                          f"A001-A{NUM_CLASSES[dataset]:03d}")


def is_training(sample: SampleName, dataset: str, benchmark: str) -> bool:
  """Whether `sample` is in the training part of `dataset`'s `benchmark`.

  NTU-60 xsub: performers `NTU60_XSUB_TRAIN_PERFORMERS`; NTU-60 xview: cameras 2 and 3;
  NTU-120 xsub: performers `NTU120_XSUB_TRAIN_PERFORMERS`; NTU-120 xset: even setups.

  Raises:
    ValueError: an unknown dataset or a benchmark the dataset does not have.
  """
  _check_dataset(dataset)
  if benchmark not in BENCHMARKS[dataset]:
    raise ValueError(f"unknown benchmark {benchmark!r} for {dataset}: choose from "
                     f"{list(BENCHMARKS[dataset])}")
  if benchmark == "xsub":
    performers = (NTU60_XSUB_TRAIN_PERFORMERS if dataset == "ntu60"
                  else NTU120_XSUB_TRAIN_PERFORMERS)
    return sample.performer in performers
  if benchmark == "xview":
    return sample.camera in NTU60_XVIEW_TRAIN_CAMERAS
  return sample.setup % 2 == 0  # xset


def split_of(sample: SampleName, dataset: str, benchmark: str) -> str:
  """'train' or 'val' (AimCLR's part names) for `sample` under `benchmark`."""
  return SPLITS[0] if is_training(sample, dataset, benchmark) else SPLITS[1]


def _read_lines(path: str) -> list[str]:
  try:
    with open(path, encoding="utf-8") as f:
      return f.read().splitlines()
  except UnicodeDecodeError as error:
    raise DataFormatError(path, f"not a text file ({error.reason} at byte "
                          f"{error.start})") from None


def _line_int(lines: list[str], index: int, path: str, what: str) -> int:
  if index >= len(lines):
    raise DataFormatError(path, f"file ends after line {len(lines)} where {what} was expected "
                          "(truncated file?)")
  text = lines[index].strip()
  try:
    value = int(text)
  except ValueError:
    raise DataFormatError(path, f"line {index + 1}: expected {what} (an integer), "
                          f"got {text[:40]!r}") from None
  if value < 0:
    raise DataFormatError(path, f"line {index + 1}: {what} is negative ({value})")
  return value


def _line_floats(lines: list[str], starts: list[int], count: int, values: int, path: str,
                 what: str) -> np.ndarray:
  """Parses blocks of `count` lines of `values` numbers each, starting at `starts`.

  Returns:
    `(len(starts), count, values)` float64.
  """
  rows = [line for start in starts for line in lines[start:start + count]]
  try:
    # NumPy's C parser; `comments=None` so no character is taken for a comment.
    array = np.loadtxt(rows, dtype=np.float64, comments=None, ndmin=2)
    if array.shape == (len(rows), values):
      return array.reshape(len(starts), count, values)
  except ValueError:
    pass
  bad = first_bad_row(((index + 1, lines[index]) for start in starts
                       for index in range(start, start + count)), values, what)
  if bad is not None:
    raise DataFormatError(path, f"line {bad[0]}: {bad[1]}")
  raise DataFormatError(path, f"{what}: unparseable numbers")


def read_skeleton(path: str | os.PathLike,
                  max_bodies: int = MAX_BODIES) -> tuple[np.ndarray, np.ndarray]:
  """Reads one raw NTU `.skeleton` file.

  Args:
    path: the file.
    max_bodies: body slots kept per frame (the first ones listed).

  Returns:
    `xyz`: `(3, T, 25, max_bodies)` float64, x/y/z in metres of the first `max_bodies`
      bodies listed in each frame; empty slots are zeros. T is the file's frame count.
    `bodies`: `(T,)` int, the body count each frame announces (all zero for the dataset's
      "missing skeleton" samples).

  Raises:
    DataFormatError: truncated or malformed text, a joint count other than 25, NaN/inf
      coordinates or content after the last frame.
  """
  path = os.fspath(path)
  lines = _read_lines(path)
  num_frames = _line_int(lines, 0, path, "the frame count")
  if num_frames >= len(lines):
    raise DataFormatError(path, f"line 1 announces {num_frames} frames but only "
                          f"{len(lines) - 1} lines follow (truncated file?)")
  bodies = np.zeros(num_frames, dtype=np.int64)
  # First pass: the structure (counts) only; the numbers are parsed in one go below.
  info_starts, joint_starts, slot_frame, slot_body = [], [], [], []
  index = 1
  for frame in range(num_frames):
    bodies[frame] = _line_int(lines, index, path, f"the body count of frame {frame + 1}")
    index += 1
    for body in range(bodies[frame]):
      where = f"body {body + 1} of frame {frame + 1}"
      if index >= len(lines):
        raise DataFormatError(path, f"file ends after line {len(lines)} where the info line "
                              f"of {where} was expected (truncated file?)")
      num_joints = _line_int(lines, index + 1, path, f"the joint count of {where}")
      if num_joints != NUM_JOINTS:
        raise DataFormatError(path, f"line {index + 2}: {where} has {num_joints} joints; "
                              f"NTU skeletons have {NUM_JOINTS}")
      if index + 2 + NUM_JOINTS > len(lines):
        raise DataFormatError(path, f"file ends after line {len(lines)} inside the joints of "
                              f"{where} (truncated file?)")
      info_starts.append(index)
      joint_starts.append(index + 2)
      slot_frame.append(frame)
      slot_body.append(body)
      index += 2 + NUM_JOINTS
  trailing = next((i for i in range(index, len(lines)) if lines[i].strip()), None)
  if trailing is not None:
    raise DataFormatError(path, f"line {trailing + 1}: content after the last of the "
                          f"{num_frames} frames the first line announces")

  xyz = np.zeros((num_frames, max_bodies, NUM_JOINTS, 3))
  if joint_starts:
    _line_floats(lines, info_starts, 1, _BODY_INFO_VALUES, path, "a body info line")
    joints = _line_floats(lines, joint_starts, NUM_JOINTS, _JOINT_VALUES, path,
                          "a joint line")[..., :3]  # (bodies in the file, 25, xyz)
    finite = np.isfinite(joints).all(axis=-1)
    if not finite.all():
      slot, joint = np.argwhere(~finite)[0]
      raise DataFormatError(path, f"line {joint_starts[slot] + joint + 1}: NaN or infinite "
                            f"coordinate (joint {joint + 1} of body {slot_body[slot] + 1} of "
                            f"frame {slot_frame[slot] + 1})")
    keep = np.asarray(slot_body) < max_bodies
    xyz[np.asarray(slot_frame)[keep], np.asarray(slot_body)[keep]] = joints[keep]
  return np.ascontiguousarray(xyz.transpose(3, 0, 2, 1)), bodies
