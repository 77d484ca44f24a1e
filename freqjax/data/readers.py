"""Readers for the skeleton file formats users already hold, into one dataset object.

Three formats, all read into `SkeletonDataset` with `x` float32 `(N, C=3, T, V=25, M=2)`
(batch, xyz, frames, joints, persons; a missing second person is zeros):

- `"aimclr"`: AimCLR / CrosSCLR / SkeletonCLR, a directory with `{split}_position.npy`
  (the 50-frame transform's output) or `{split}_data.npy` (st-gcn's raw 300-frame,
  zero-padded arrays), plus `{split}_label.pkl` = `(sample_names, labels)`. The array is
  memory-mapped, never read whole.
- `"pyskl"`: PySKL's pickle `{"split": {name: [frame_dir, ...]}, "annotations": [{
  "frame_dir", "label", "keypoint" (M, T, V, C), "total_frames", ...}]}`. Each sample is
  resampled to `num_frames` and its persons padded or truncated to 2.
- `"ctrgcn"`: CTR-GCN's `.npz` with `x_{train,test}` `(N, T, 150)` (150 = 2 persons ×
  25 joints × xyz, in that order) and one-hot `y_{train,test}`.

Resampling (`resample_frames`) is the field's: the valid frames (those where joint 1 of
person 1 is non-zero, counted from the start) are linearly resized to the target length
with OpenCV `INTER_LINEAR` semantics (half-pixel centres, no antialiasing), both persons
on the same time axis. It only resizes: the raw 300-frame arrays are not centred or
rotated, so use `python -m freqjax.data.prepare` for the field's 50-frame transform.

Validation is cheap at load (shapes, labels, the first chunk of coordinates) and the
rest of the coordinates are checked batch by batch in `SkeletonDataset.read`, so a 5 GB
memory map opens instantly yet a NaN still fails with the file and sample named.
"""
import dataclasses
import os
import pickle
from collections.abc import Sequence

import numpy as np

from freqjax.data.errors import DataFormatError

FORMATS = ("aimclr", "pyskl", "ctrgcn")
NUM_JOINTS = 25
NUM_PERSONS = 2
NUM_COORDS = 3
# Samples checked for NaN/inf when a dataset is opened; the rest are checked as read.
_CHECK_CHUNK = 256
# |coordinate| above which a sample is implausible (metres), for `implausible_data`.
MAX_ABS_COORDINATE = 1e3


@dataclasses.dataclass(frozen=True, eq=False)
class SkeletonDataset:
  """A labelled skeleton dataset.

  Attributes:
    data: `(N, 3, T, 25, 2)` coordinates as stored (float32, possibly a read-only
      `np.memmap` or a strided view); read batches with `read`, which validates and
      resamples.
    labels: `(N,)` int32 class ids in `[0, num_classes)`.
    sample_names: N names (NTU `SsssCcccPpppRrrrAaaa...`, PySKL `frame_dir`, or
      `{split}_{i}` where the format stores none).
    num_classes: number of classes.
    path: the file the coordinates come from (named in errors).
    num_frames: T of the batches `read` returns; `None` keeps the stored T.
  """
  data: np.ndarray
  labels: np.ndarray
  sample_names: tuple[str, ...]
  num_classes: int
  path: str
  num_frames: int | None = None

  def __len__(self) -> int:
    return len(self.labels)

  @property
  def frames(self) -> int:
    """T of the batches `read` returns."""
    return self.num_frames or self.data.shape[2]

  def read(self, indices: np.ndarray) -> np.ndarray:
    """Float32 `(len(indices), 3, frames, 25, 2)` coordinates of dataset rows `indices`.

    Rows are gathered in ascending order (sequential reads of a memory map) and returned
    in the order asked; repeated indices are allowed. Raises `DataFormatError` naming the
    file and the first sample index with a NaN or infinite coordinate.
    """
    indices = np.asarray(indices, dtype=np.int64)
    unique, inverse = np.unique(indices, return_inverse=True)
    x = np.asarray(self.data[unique], dtype=np.float32)
    _check_finite(x, unique, self)
    if self.num_frames is not None and self.num_frames != x.shape[2]:
      x = resample_frames(x, valid_lengths(x), self.num_frames)
    return x[inverse]


def load_dataset(format: str, path: str, split: str,  # pylint: disable=redefined-builtin
                 num_frames: int | None = None,
                 num_classes: int | None = None) -> SkeletonDataset:
  """Opens one split of a dataset held in one of the field's formats.

  Args:
    format: `"aimclr"`, `"pyskl"` or `"ctrgcn"` (see the module docstring).
    path: the directory of `{split}_position.npy` (aimclr), the `.pkl` file (pyskl) or the
      `.npz` file (ctrgcn).
    split: `train`/`val` (aimclr: any `{split}_position.npy` present), a key of PySKL's
      `split` dict (e.g. `xsub_train`), or `train`/`test` (ctrgcn).
    num_frames: T of the batches; `None` keeps the stored T (pyskl: the longest sample,
      zero-padded).
    num_classes: class count; `None` infers it (largest label + 1; ctrgcn: the one-hot
      width). Labels outside `[0, num_classes)` are an error.

  Raises:
    FileNotFoundError: a missing file.
    DataFormatError (a ValueError): an unknown format or split, a file with the wrong
      layout, inconsistent labels or NaN/inf values.
  """
  if num_frames is not None and num_frames < 1:
    raise DataFormatError(f"num_frames must be positive or None, got {num_frames}.")
  if format == "aimclr":
    return _load_aimclr(path, split, num_frames, num_classes)
  if format == "pyskl":
    return _load_pyskl(path, split, num_frames, num_classes)
  if format == "ctrgcn":
    return _load_ctrgcn(path, split, num_frames, num_classes)
  raise DataFormatError(f"Unknown data format {format!r}: use one of {', '.join(FORMATS)} "
                        "(AimCLR .npy + .pkl, PySKL .pkl, CTR-GCN .npz).")


def valid_lengths(x: np.ndarray) -> np.ndarray:
  """`(N,)` number of frames where joint 1 of person 1 is non-zero, for `x (N, 3, T, V, M)`.

  The reference (AimCLR's `NTUMotionProcessor.get_length`) counts them and resizes that
  many frames from the start.
  """
  return np.count_nonzero(np.abs(x[:, :, :, 0, 0]).sum(axis=1), axis=1)


def resample_frames(x: np.ndarray, lengths: np.ndarray, num_frames: int) -> np.ndarray:
  """Linearly resizes the first `lengths[n]` frames of each sample to `num_frames`.

  OpenCV `resize(..., INTER_LINEAR)` semantics along T, with the arithmetic of
  `freqjax.data.transform.resize_frames` (one sample there, a batch here): output frame `t`
  samples source position `(t + 0.5) * length / num_frames - 0.5`, interpolating between
  the two neighbouring frames, indices clamped to `[0, length - 1]`. A sample with length
  0 comes out all zeros.

  Args:
    x: `(N, C, T, V, M)`.
    lengths: `(N,)` valid frame counts, each in `[0, T]`.
    num_frames: output T.

  Returns:
    float32 `(N, C, num_frames, V, M)`.
  """
  lengths = np.asarray(lengths, dtype=np.int64)
  last = np.maximum(lengths - 1, 0)[:, None]
  with np.errstate(divide="ignore"):
    scale = 1.0 / (num_frames / lengths.astype(np.float64))[:, None]
  position = (np.arange(num_frames, dtype=np.float64)[None, :] + 0.5) * scale - 0.5
  below = np.floor(position)
  fraction = (position - below).astype(np.float32)[:, None, :, None, None]
  below = below.astype(np.int64)
  take = lambda t: np.take_along_axis(x, t[:, None, :, None, None], axis=2)
  x = np.asarray(x, dtype=np.float32)
  out = (take(np.clip(below, 0, last)) * (np.float32(1.0) - fraction)
         + take(np.clip(below + 1, 0, last)) * fraction)
  out[lengths == 0] = 0.0
  return out


def implausible_data(dataset: SkeletonDataset, num_samples: int = 256,
                     seed: int = 0) -> list[str]:
  """Warnings about a split that is finite but unlikely to be what the user meant.

  Checks a seeded sample of `num_samples` rows (not the whole file, which may be a large
  memory map): the fraction of all-zero samples (over half: a broken conversion or
  padding), and of samples with a coordinate beyond +-`MAX_ABS_COORDINATE` (NTU and
  PKU-MMD coordinates are metres; millimetres or pixels need converting).

  Returns:
    One message per problem, naming the file and the fraction; empty when none.
  """
  n = len(dataset)
  if n == 0:
    return []
  rows = np.sort(np.random.default_rng(seed).choice(n, min(n, num_samples), replace=False))
  x = np.asarray(dataset.data[rows], dtype=np.float32).reshape(len(rows), -1)
  size = f"{len(rows)} randomly chosen" if len(rows) < n else f"all {n}"
  warnings = []
  zero = float(np.mean(~x.any(axis=1)))
  if zero > 0.5:
    warnings.append(f"{dataset.path}: {100 * zero:.0f}% of {size} samples are all zeros "
                    "(no skeleton); check how the file was made.")
  absurd = np.abs(x).max(axis=1) > MAX_ABS_COORDINATE
  if absurd.any():
    warnings.append(
        f"{dataset.path}: {100 * float(absurd.mean()):.0f}% of {size} samples have "
        f"coordinates beyond +-{MAX_ABS_COORDINATE:g} (largest {float(np.abs(x).max()):.3g}); "
        "skeleton coordinates are expected in metres: convert millimetres or pixels first.")
  return warnings


def _check_finite(x: np.ndarray, rows: np.ndarray, dataset: SkeletonDataset) -> None:
  finite = np.isfinite(x).reshape(len(x), -1).all(axis=1)
  if not finite.all():
    row = int(rows[np.argmin(finite)])
    raise DataFormatError(
        f"{dataset.path}: sample {row} ({dataset.sample_names[row]}) has NaN or infinite "
        "coordinates; re-create the file or drop the sample.")


def _validate(data: np.ndarray, labels, sample_names: Sequence[str], path: str,
              label_path: str, num_classes: int | None, num_frames: int | None,
              class_count_hint: int | None = None) -> SkeletonDataset:
  """Checks shapes and labels, and the first chunk of coordinates, of any format."""
  if data.ndim != 5 or data.shape[1] != NUM_COORDS or data.shape[3] != NUM_JOINTS or (
      data.shape[4] != NUM_PERSONS):
    raise DataFormatError(
        f"{path}: coordinates have shape {data.shape}; expected (N, 3, T, 25, 2) "
        "(samples, xyz, frames, NTU joints, persons).")
  labels = np.asarray(labels)
  if labels.ndim != 1 or not (labels.size == 0 or np.issubdtype(labels.dtype, np.integer)):
    raise DataFormatError(f"{label_path}: labels must be a flat list of integer class ids, "
                          f"got an array of shape {labels.shape} and dtype {labels.dtype}.")
  if len(labels) != len(data) or len(sample_names) != len(data):
    raise DataFormatError(
        f"{label_path}: {len(labels)} labels and {len(sample_names)} sample names but "
        f"{path} holds {len(data)} samples; the label file belongs to another split or file.")
  if num_classes is None:
    num_classes = class_count_hint or (int(labels.max()) + 1 if len(labels) else 0)
  bad = (labels < 0) | (labels >= num_classes)
  if bad.any():
    row = int(np.argmax(bad))
    raise DataFormatError(
        f"{label_path}: sample {row} ({sample_names[row]}) has class id {int(labels[row])}, "
        f"outside [0, {num_classes}); set data.num_classes to the dataset's class count.")
  dataset = SkeletonDataset(
      data=data, labels=labels.astype(np.int32), sample_names=tuple(map(str, sample_names)),
      num_classes=int(num_classes), path=path, num_frames=num_frames)
  head = np.arange(min(len(data), _CHECK_CHUNK))
  _check_finite(np.asarray(data[head]), head, dataset)
  return dataset


def _unknown_split(path: str, split: str, available) -> DataFormatError:
  return DataFormatError(f"{path}: unknown split {split!r}; available: "
                    f"{', '.join(sorted(available)) or 'none'}.")


def _load_pickle(path: str):
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file.")
  try:
    with open(path, "rb") as f:
      return pickle.load(f)
  except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as e:
    raise DataFormatError(f"{path}: not a readable pickle ({e}).") from None


def _load_aimclr(directory: str, split: str, num_frames, num_classes) -> SkeletonDataset:
  candidates = [os.path.join(directory, f"{split}_{kind}.npy") for kind in ("position", "data")]
  data_path = next((p for p in candidates if os.path.isfile(p)), None)
  if data_path is None:
    if not os.path.isdir(directory):
      raise FileNotFoundError(f"{directory}: no such directory (data.path of the aimclr "
                              "format is the directory holding {split}_position.npy).")
    splits = {name.rsplit("_", 1)[0] for name in os.listdir(directory)
              if name.endswith(("_position.npy", "_data.npy"))}
    raise _unknown_split(directory, split, splits)
  try:
    data = np.load(data_path, mmap_mode="r")
  except ValueError as e:
    raise DataFormatError(f"{data_path}: not a readable .npy array ({e}).") from None
  if data.dtype != np.float32:
    raise DataFormatError(f"{data_path}: dtype {data.dtype}; expected float32.")
  label_path = os.path.join(directory, f"{split}_label.pkl")
  content = _load_pickle(label_path)
  if not (isinstance(content, (tuple, list)) and len(content) == 2):
    raise DataFormatError(f"{label_path}: expected a pickled pair (sample_names, labels), "
                          f"got {type(content).__name__}.")
  sample_names, labels = content
  return _validate(data, list(labels), list(sample_names), data_path, label_path,
                   num_classes, num_frames)


def _load_pyskl(path: str, split: str, num_frames, num_classes) -> SkeletonDataset:
  content = _load_pickle(path)
  if not (isinstance(content, dict) and "split" in content and "annotations" in content):
    raise DataFormatError(f"{path}: expected PySKL's dict with 'split' and 'annotations'.")
  if split not in content["split"]:
    raise _unknown_split(path, split, content["split"])
  by_name = {a["frame_dir"]: a for a in content["annotations"]}
  names = list(content["split"][split])
  missing = [name for name in names if name not in by_name]
  if missing:
    raise DataFormatError(f"{path}: split {split!r} lists {len(missing)} samples with no "
                          f"annotation (first: {missing[0]!r}).")
  samples = [by_name[name] for name in names]
  for name, sample in zip(names, samples):
    keypoint = np.asarray(sample["keypoint"])
    if keypoint.ndim != 4 or keypoint.shape[2] != NUM_JOINTS or keypoint.shape[3] != NUM_COORDS:
      raise DataFormatError(
          f"{path}: sample {name!r} has keypoint shape {keypoint.shape}; expected "
          "(M, T, 25, 3) (persons, frames, NTU joints, xyz): 2-D or non-NTU skeletons are "
          "not supported.")
  length = num_frames or max((np.shape(s["keypoint"])[1] for s in samples), default=1)
  data = np.zeros((len(samples), NUM_COORDS, length, NUM_JOINTS, NUM_PERSONS), np.float32)
  for i, sample in enumerate(samples):
    # (M, T, V, C) -> (C, T, V, M), extra persons dropped, a missing one left at zero.
    keypoint = np.asarray(sample["keypoint"], np.float32)[:NUM_PERSONS].transpose(3, 1, 2, 0)
    frames, persons = keypoint.shape[1], keypoint.shape[3]
    if num_frames is None:
      data[i, :, :frames, :, :persons] = keypoint
    else:
      resized = resample_frames(keypoint[None], np.array([frames]), num_frames)[0]
      data[i, :, :, :, :persons] = resized
  labels = [s["label"] for s in samples]
  if num_classes is None:
    all_labels = [a["label"] for a in content["annotations"]]
    num_classes = int(max(all_labels)) + 1 if all_labels else 0
  return _validate(data, labels, names, path, path, num_classes, None)


def _load_ctrgcn(path: str, split: str, num_frames, num_classes) -> SkeletonDataset:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file.")
  try:
    archive = np.load(path)
  except (ValueError, OSError) as e:
    raise DataFormatError(f"{path}: not a readable .npz archive ({e}).") from None
  with archive:
    available = {key[2:] for key in archive.files if key.startswith("x_")}
    if split not in available:
      raise _unknown_split(path, split, available)
    if f"y_{split}" not in archive.files:
      raise DataFormatError(f"{path}: has x_{split} but no y_{split}.")
    x, onehot = archive[f"x_{split}"], archive[f"y_{split}"]
  if x.ndim != 3 or x.shape[2] != NUM_PERSONS * NUM_JOINTS * NUM_COORDS:
    raise DataFormatError(
        f"{path}: x_{split} has shape {x.shape}; expected (N, T, 150) with 150 = "
        "2 persons x 25 joints x xyz.")
  if onehot.ndim != 2 or not np.all(np.sum(onehot > 0, axis=1) == 1):
    raise DataFormatError(f"{path}: y_{split} must be one-hot (N, num_classes), one positive "
                          f"entry a row; got shape {onehot.shape}.")
  # CTR-GCN's feeder: x.reshape(N, T, 2, 25, 3).transpose(0, 4, 1, 3, 2). A view, no copy.
  n, t, _ = x.shape
  data = x.astype(np.float32, copy=False).reshape(
      n, t, NUM_PERSONS, NUM_JOINTS, NUM_COORDS).transpose(0, 4, 1, 3, 2)
  labels = np.argmax(onehot > 0, axis=1)
  names = [f"{split}_{i}" for i in range(n)]
  return _validate(data, labels, names, path, path, num_classes, num_frames,
                   class_count_hint=onehot.shape[1])
