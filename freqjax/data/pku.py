"""PKU-MMD phases I and II: skeleton sequences, label files, clips and official splits.

The dataset ships untrimmed videos; the field (CrosSCLR/AimCLR's
`tools/pku_part{1,2}_skeleton.py` and `pku_part{1,2}_gendata.py`) cuts one clip per label
line and names it like NTU's samples. Files, per video id (`0002-L` in phase I,
`A01N01-L` in phase II; the letter is the view, L/M/R):

- skeleton text `<video>.txt`: one line per frame of 150 numbers, person 1's 25 joints
  x y z (metres, NTU joint order) then person 2's (zeros when absent);
- label file `<video>.txt` (another directory): one line per action instance,
  `action,start,end,confidence` (1-based class id and 1-based, inclusive first/last
  frame; the confidence, 1 or 2, is optional here and unused);
- split files (`cross-subject.txt`, `cross-view.txt` in phase I; `cross_subject_v2.txt`,
  `cross_view_v2.txt` in phase II). `read_split_file` takes the official format, a
  "Training videos:" line followed by the comma-separated training ids and a
  "Validataion videos:" line (sic; "Validation"/"Testing" also accepted) followed by the
  validation ids, ids possibly spread over several lines; or a plain list of training
  ids, one (or several, comma-separated) per line, in which case every other video is
  validation (the reference's rule, `istraining = name in training_set`).

A clip is the frames `[start - 1, end)` of its video (`cut_clip`), named
`F{video:03d}V{view:03d}C{action:03d}L{index:03d}.skeleton` (phase I) or
`A{a:03d}N{n:03d}V{view:03d}C{action:03d}L{index:03d}.skeleton` (phase II), with view
L/M/R = 1/2/3 and `index` the 1-based row of the label file; label = action - 1. Both
phases use PKU-MMD's 51-class id space (phase II uses 41 of the ids).
"""
import dataclasses
import os
import re

import numpy as np

from freqjax.data.errors import DataFormatError, first_bad_row

NUM_CLASSES = 51
NUM_JOINTS = 25
NUM_PERSONS = 2
VALUES_PER_FRAME = NUM_PERSONS * NUM_JOINTS * 3
PHASES = ("pku1", "pku2")
BENCHMARKS = ("xsub", "xview")
SPLIT_FILE_NAMES = {
    "pku1": {"xsub": ("cross-subject.txt", "cross_subject.txt"),
             "xview": ("cross-view.txt", "cross_view.txt")},
    "pku2": {"xsub": ("cross_subject_v2.txt", "cross-subject_v2.txt"),
             "xview": ("cross_view_v2.txt", "cross-view_v2.txt")},
}
_VIDEO = {"pku1": re.compile(r"(\d{4})-([LMR])"),
          "pku2": re.compile(r"A(\d{2})N(\d{2})-([LMR])")}
VIDEO_EXAMPLES = {"pku1": "0002-L", "pku2": "A01N01-L"}
_VIEWS = {"L": 1, "M": 2, "R": 3}
_HEADER = re.compile(r"\s*(training|validataion|validation|testing|test)\b[^:]*:(.*)",
                     re.IGNORECASE)


def _check_phase(phase: str) -> None:
  if phase not in PHASES:
    raise ValueError(f"unknown PKU-MMD phase {phase!r}: choose from {list(PHASES)}")


def is_video_id(video: str, phase: str) -> bool:
  """Whether `video` is a video id of `phase` (`0002-L` for pku1, `A01N01-L` for pku2)."""
  _check_phase(phase)
  return _VIDEO[phase].fullmatch(video) is not None


def sample_prefix(video: str, phase: str) -> str:
  """The part of a clip name fixed by its video: `0002-L` -> `F002V001` (pku1),
  `A01N01-L` -> `A001N001V001` (pku2).

  Raises:
    DataFormatError: `video` is not a video id of `phase`.
  """
  _check_phase(phase)
  match = _VIDEO[phase].fullmatch(video)
  if match is None:
    raise DataFormatError(video, f"not a PKU-MMD {phase} video id "
                          f"(e.g. {VIDEO_EXAMPLES[phase]})")
  *numbers, view = match.groups()
  view_id = _VIEWS[view]
  if phase == "pku1":
    return f"F{int(numbers[0]):03d}V{view_id:03d}"
  return f"A{int(numbers[0]):03d}N{int(numbers[1]):03d}V{view_id:03d}"


@dataclasses.dataclass(frozen=True)
class Clip:
  """One action instance of a label file.

  Attributes:
    video: the video id (the label file's stem).
    index: 1-based row among the label file's non-blank lines (the name's `L` number).
    action: 1-based class id.
    start: 1-based first frame.
    end: 1-based last frame (inclusive).
  """
  video: str
  index: int
  action: int
  start: int
  end: int

  @property
  def label(self) -> int:
    """0-based class id."""
    return self.action - 1

  def sample_name(self, phase: str) -> str:
    """The reference's clip name, e.g. `F002V001C013L004.skeleton`."""
    return f"{sample_prefix(self.video, phase)}C{self.action:03d}L{self.index:03d}.skeleton"


def _read_lines(path: str) -> list[str]:
  try:
    with open(path, encoding="utf-8") as f:
      return f.read().splitlines()
  except UnicodeDecodeError as error:
    raise DataFormatError(path, f"not a text file ({error.reason} at byte "
                          f"{error.start})") from None


def _integer(text: str) -> int:
  value = float(text)
  if not value.is_integer():
    raise ValueError(text)
  return int(value)


def read_labels(path: str | os.PathLike, num_classes: int = NUM_CLASSES) -> list[Clip]:
  """Reads a label file (`action,start,end[,confidence]` per line).

  Returns:
    The clips in file order (blank lines skipped, as the reference's `np.loadtxt` does).

  Raises:
    DataFormatError: a malformed line, a class id outside `[1, num_classes]`, or frames
      with `start < 1` or `end < start`.
  """
  path = os.fspath(path)
  video = os.path.splitext(os.path.basename(path))[0]
  lines = _read_lines(path)
  clips = []
  for number, text in enumerate(lines, start=1):
    if not text.strip():
      continue
    fields = [field.strip() for field in text.split(",")]
    try:
      if len(fields) not in (3, 4):
        raise ValueError(text)
      action, start, end = (_integer(field) for field in fields[:3])
    except ValueError:
      raise DataFormatError(path, f"line {number}: expected 'action,start,end,confidence' "
                            f"(integers), got {text.strip()[:60]!r}") from None
    if not 1 <= action <= num_classes:
      raise DataFormatError(path, f"line {number}: class id {action} is outside "
                            f"1-{num_classes}")
    if start < 1 or end < start:
      raise DataFormatError(path, f"line {number}: frames {start}-{end} are not a range of "
                            "1-based frames with start <= end")
    clips.append(Clip(video, len(clips) + 1, action, start, end))
  return clips


def read_sequence(path: str | os.PathLike) -> np.ndarray:
  """Reads a skeleton text file of 150 numbers per frame.

  Returns:
    `(3, F, 25, 2)` float64: xyz (metres), frames, NTU joints, persons.

  Raises:
    DataFormatError: a line without 150 numbers, a non-numeric value, NaN/inf or no frame.
  """
  path = os.fspath(path)
  lines = [line for line in _read_lines(path) if line.strip()]
  if not lines:
    raise DataFormatError(path, "no frames (empty skeleton file)")
  try:
    values = np.loadtxt(lines, dtype=np.float64, comments=None, ndmin=2)
    ok = values.shape == (len(lines), VALUES_PER_FRAME)
  except ValueError:
    ok = False
  if not ok:
    # Frames are numbered among the non-blank lines.
    bad = first_bad_row(enumerate(lines, start=1), VALUES_PER_FRAME,
                        "2 persons x 25 joints x xyz")
    if bad is not None:
      raise DataFormatError(path, f"frame {bad[0]}: {bad[1]}")
    raise DataFormatError(path, "unparseable numbers")
  finite = np.isfinite(values).all(axis=1)
  if not finite.all():
    raise DataFormatError(path, f"frame {int(np.argmin(finite)) + 1}: NaN or infinite "
                          "coordinate")
  # (F, persons, joints, xyz) -> (xyz, F, joints, persons)
  return values.reshape(len(lines), NUM_PERSONS, NUM_JOINTS, 3).transpose(3, 0, 2, 1)


def cut_clip(sequence: np.ndarray, clip: Clip, label_path: str | os.PathLike,
             skeleton_path: str | os.PathLike) -> np.ndarray:
  """Frames `[clip.start - 1, clip.end)` of `(3, F, 25, 2)` `sequence`.

  Raises:
    DataFormatError: naming the label file, when the clip ends after the sequence.
  """
  frames = sequence.shape[1]
  if clip.end > frames:
    raise DataFormatError(label_path, f"clip {clip.index}: frames {clip.start}-{clip.end} "
                          f"end beyond the {frames} frames of {os.fspath(skeleton_path)}")
  return sequence[:, clip.start - 1:clip.end]


@dataclasses.dataclass(frozen=True)
class Split:
  """A benchmark's video lists.

  Attributes:
    train: training video ids.
    val: validation video ids, or None when the file listed only training ids (then every
      other video is validation).
  """
  train: frozenset[str]
  val: frozenset[str] | None

  def part_of(self, video: str) -> str | None:
    """'train', 'val', or None for a video the official lists leave out."""
    if video in self.train:
      return "train"
    if self.val is None or video in self.val:
      return "val"
    return None


def read_split_file(path: str | os.PathLike) -> Split:
  """Reads an official PKU-MMD split file or a plain list of training ids (module doc).

  Raises:
    DataFormatError: ids before the first header, a video listed for both parts, or no
      training video.
  """
  path = os.fspath(path)
  lines = _read_lines(path)
  official = any(_HEADER.match(line) for line in lines)
  parts: dict[str, set[str]] = {"train": set(), "val": set()}
  part = None if official else "train"
  for number, line in enumerate(lines, start=1):
    header = _HEADER.match(line) if official else None
    if header:
      part = "train" if header.group(1).lower() == "training" else "val"
      line = header.group(2)
    ids = [token.strip() for token in line.split(",") if token.strip()]
    if ids and part is None:
      raise DataFormatError(path, f"line {number}: video ids before a 'Training videos:' "
                            "or 'Validation videos:' line")
    if part is not None:
      parts[part].update(ids)
  both = parts["train"] & parts["val"]
  if both:
    raise DataFormatError(path, f"video {sorted(both)[0]} is listed for both training and "
                          "validation")
  if not parts["train"]:
    raise DataFormatError(path, "lists no training video")
  return Split(frozenset(parts["train"]), frozenset(parts["val"]) if official else None)
