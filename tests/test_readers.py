"""The three dataset formats: round trips against files written here, and every bad input."""
import pickle

import numpy as np
import pytest

from freqjax.data import readers
from freqjax.data.errors import DataFormatError


def _skeletons(rng, n, t, valid=None):
  """(n, 3, t, 25, 2) float32; frames from `valid[i]` on are zero padding."""
  x = rng.normal(size=(n, 3, t, 25, 2)).astype(np.float32)
  if valid is not None:
    for i, length in enumerate(valid):
      x[i, :, length:] = 0
  return x


def _write_aimclr(directory, split, x, labels, names=None, kind="position"):
  np.save(directory / f"{split}_{kind}.npy", x)
  names = names or [f"S001C001P001R001A{label + 1:03d}.skeleton" for label in labels]
  with open(directory / f"{split}_label.pkl", "wb") as f:
    pickle.dump((names, list(labels)), f)
  return names


def _interp_reference(x, length, num_frames):
  """Independent resize of the first `length` frames of x (3, T, V, M) with np.interp."""
  out = np.zeros(x.shape[:1] + (num_frames,) + x.shape[2:], np.float32)
  source = (np.arange(num_frames) + 0.5) * length / num_frames - 0.5
  for c in range(x.shape[0]):
    for v in range(x.shape[2]):
      for m in range(x.shape[3]):
        out[c, :, v, m] = np.interp(source, np.arange(length), x[c, :length, v, m])
  return out


def test_aimclr_round_trip(tmp_path):
  rng = np.random.default_rng(0)
  x = _skeletons(rng, 7, 12)
  labels = [3, 0, 59, 1, 1, 2, 7]
  names = _write_aimclr(tmp_path, "train", x, labels)
  dataset = readers.load_dataset("aimclr", str(tmp_path), "train")
  assert isinstance(dataset.data, np.memmap)
  assert len(dataset) == 7 and dataset.num_classes == 60 and dataset.frames == 12
  assert dataset.sample_names == tuple(names)
  np.testing.assert_array_equal(dataset.labels, labels)
  assert dataset.labels.dtype == np.int32
  rows = np.array([5, 0, 5, 2])
  np.testing.assert_array_equal(dataset.read(rows), x[rows])
  assert str(tmp_path / "train_position.npy") == dataset.path


def test_aimclr_raw_300_frame_file_resampled_like_the_field(tmp_path):
  rng = np.random.default_rng(1)
  valid = [300, 40, 7, 0]
  x = _skeletons(rng, 4, 300, valid)
  _write_aimclr(tmp_path, "val", x, [0, 1, 2, 3], kind="data")
  dataset = readers.load_dataset("aimclr", str(tmp_path), "val", num_frames=50)
  assert dataset.data.shape[2] == 300 and dataset.frames == 50
  out = dataset.read(np.arange(4))
  assert out.shape == (4, 3, 50, 25, 2) and out.dtype == np.float32
  for i, length in enumerate(valid[:3]):
    np.testing.assert_allclose(out[i], _interp_reference(x[i], length, 50), atol=1e-6)
  np.testing.assert_array_equal(out[3], 0)


def test_resample_upsampling_matches_reference():
  rng = np.random.default_rng(2)
  x = _skeletons(rng, 2, 10, [10, 3])
  out = readers.resample_frames(x, np.array([10, 3]), 16)
  for i, length in enumerate([10, 3]):
    np.testing.assert_allclose(out[i], _interp_reference(x[i], length, 16), atol=1e-6)
  np.testing.assert_array_equal(readers.resample_frames(x, np.array([10, 10]), 10)[0], x[0])


def _pyskl_file(path, annotations, split):
  with open(path, "wb") as f:
    pickle.dump({"split": split, "annotations": annotations}, f)


def test_pyskl_round_trip(tmp_path):
  rng = np.random.default_rng(3)
  keypoints = [rng.normal(size=(1, 9, 25, 3)), rng.normal(size=(3, 5, 25, 3)),
               rng.normal(size=(2, 20, 25, 3))]
  annotations = [{"frame_dir": f"S001C001P00{i}R001A001", "label": label, "keypoint": k,
                  "total_frames": k.shape[1]} for i, (label, k) in
                 enumerate(zip([4, 0, 119], keypoints))]
  path = tmp_path / "ntu.pkl"
  _pyskl_file(path, annotations, {"xsub_train": ["S001C001P002R001A001", "S001C001P000R001A001"],
                                  "xsub_val": ["S001C001P001R001A001"]})

  padded = readers.load_dataset("pyskl", str(path), "xsub_train")
  assert padded.sample_names == ("S001C001P002R001A001", "S001C001P000R001A001")
  np.testing.assert_array_equal(padded.labels, [119, 4])
  assert padded.num_classes == 120  # from all annotations, not just the split
  x = padded.read(np.arange(2))
  assert x.shape == (2, 3, 20, 25, 2)
  np.testing.assert_array_equal(x[0], keypoints[2].transpose(3, 1, 2, 0).astype(np.float32))
  np.testing.assert_array_equal(x[1, :, :9, :, 0],
                                keypoints[0][0].transpose(2, 0, 1).astype(np.float32))
  np.testing.assert_array_equal(x[1, :, 9:], 0)
  np.testing.assert_array_equal(x[1, ..., 1], 0)

  resampled = readers.load_dataset("pyskl", str(path), "xsub_val", num_frames=8)
  truncated = keypoints[1][:2].transpose(3, 1, 2, 0).astype(np.float32)  # persons 3+ dropped
  np.testing.assert_allclose(resampled.read(np.array([0]))[0],
                             _interp_reference(truncated, 5, 8), atol=1e-6)


def test_ctrgcn_reshape_matches_feeder_layout(tmp_path):
  rng = np.random.default_rng(4)
  n, t = 5, 6
  x = rng.normal(size=(n, t, 150)).astype(np.float32)
  labels = np.array([2, 0, 1, 2, 9])
  path = tmp_path / "NTU60_CS.npz"
  np.savez(path, x_train=x, y_train=np.eye(10)[labels], x_test=x[:2], y_test=np.eye(10)[:2])
  dataset = readers.load_dataset("ctrgcn", str(path), "train")
  assert dataset.num_classes == 10 and dataset.sample_names[4] == "train_4"
  np.testing.assert_array_equal(dataset.labels, labels)
  expected = np.zeros((n, 3, t, 25, 2), np.float32)
  for i in range(n):
    for frame in range(t):
      for m in range(2):
        for v in range(25):
          for c in range(3):
            expected[i, c, frame, v, m] = x[i, frame, m * 75 + v * 3 + c]
  np.testing.assert_array_equal(dataset.read(np.arange(n)), expected)
  assert len(readers.load_dataset("ctrgcn", str(path), "test")) == 2


# Bad input: each gets one clear error naming the file.


def test_unknown_format():
  with pytest.raises(ValueError, match="aimclr, pyskl, ctrgcn"):
    readers.load_dataset("ntu", "/nowhere", "train")


def test_unknown_split_lists_available(tmp_path):
  rng = np.random.default_rng(5)
  _write_aimclr(tmp_path, "train", _skeletons(rng, 2, 4), [0, 1])
  _write_aimclr(tmp_path, "val", _skeletons(rng, 2, 4), [0, 1])
  with pytest.raises(ValueError, match=r"unknown split 'test'; available: train, val"):
    readers.load_dataset("aimclr", str(tmp_path), "test")
  path = tmp_path / "p.pkl"
  _pyskl_file(path, [], {"xsub_train": [], "xsub_val": []})
  with pytest.raises(ValueError, match=r"p.pkl: unknown split 'train'; available: xsub_train"):
    readers.load_dataset("pyskl", str(path), "train")
  np.savez(tmp_path / "c.npz", x_train=np.zeros((1, 2, 150)), y_train=np.eye(2)[:1])
  with pytest.raises(ValueError, match=r"c.npz: unknown split 'val'; available: train"):
    readers.load_dataset("ctrgcn", str(tmp_path / "c.npz"), "val")


def test_missing_files(tmp_path):
  with pytest.raises(FileNotFoundError, match="no such directory"):
    readers.load_dataset("aimclr", str(tmp_path / "absent"), "train")
  np.save(tmp_path / "train_position.npy", np.zeros((1, 3, 4, 25, 2), np.float32))
  with pytest.raises(FileNotFoundError, match="train_label.pkl"):
    readers.load_dataset("aimclr", str(tmp_path), "train")
  with pytest.raises(FileNotFoundError, match="x.npz"):
    readers.load_dataset("ctrgcn", str(tmp_path / "x.npz"), "train")


def test_label_count_disagrees_with_data(tmp_path):
  rng = np.random.default_rng(6)
  np.save(tmp_path / "train_position.npy", _skeletons(rng, 3, 4))
  with open(tmp_path / "train_label.pkl", "wb") as f:
    pickle.dump((["a", "b"], [0, 1]), f)
  with pytest.raises(DataFormatError, match=r"train_label.pkl: 2 labels .* holds 3 samples"):
    readers.load_dataset("aimclr", str(tmp_path), "train")
  np.savez(tmp_path / "c.npz", x_train=np.zeros((3, 2, 150)), y_train=np.eye(2)[[0, 1]])
  with pytest.raises(DataFormatError, match=r"c.npz: 2 labels .* holds 3 samples"):
    readers.load_dataset("ctrgcn", str(tmp_path / "c.npz"), "train")


def test_class_id_out_of_range(tmp_path):
  rng = np.random.default_rng(7)
  _write_aimclr(tmp_path, "train", _skeletons(rng, 3, 4), [0, 60, 1])
  with pytest.raises(DataFormatError, match=r"train_label.pkl: sample 1 .* class id 60, "
                                            r"outside \[0, 60\)"):
    readers.load_dataset("aimclr", str(tmp_path), "train", num_classes=60)
  _write_aimclr(tmp_path, "val", _skeletons(rng, 2, 4), [0, -1])
  with pytest.raises(DataFormatError, match="class id -1"):
    readers.load_dataset("aimclr", str(tmp_path), "val")


def test_wrong_joint_count(tmp_path):
  np.save(tmp_path / "train_position.npy", np.zeros((2, 3, 4, 20, 2), np.float32))
  with open(tmp_path / "train_label.pkl", "wb") as f:
    pickle.dump((["a", "b"], [0, 1]), f)
  with pytest.raises(DataFormatError, match=r"train_position.npy: .*\(2, 3, 4, 20, 2\)"):
    readers.load_dataset("aimclr", str(tmp_path), "train")
  path = tmp_path / "coco.pkl"
  _pyskl_file(path, [{"frame_dir": "a", "label": 0, "keypoint": np.zeros((1, 4, 17, 2))}],
              {"train": ["a"]})
  with pytest.raises(DataFormatError, match=r"coco.pkl: sample 'a' .*\(1, 4, 17, 2\)"):
    readers.load_dataset("pyskl", str(path), "train")
  np.savez(tmp_path / "c.npz", x_train=np.zeros((1, 2, 120)), y_train=np.eye(2)[:1])
  with pytest.raises(DataFormatError, match=r"c.npz: x_train has shape \(1, 2, 120\)"):
    readers.load_dataset("ctrgcn", str(tmp_path / "c.npz"), "train")


def test_nan_in_first_chunk_fails_at_load(tmp_path):
  rng = np.random.default_rng(8)
  x = _skeletons(rng, 3, 4)
  x[2, 1, 3, 7, 0] = np.nan
  _write_aimclr(tmp_path, "train", x, [0, 1, 2], names=["a", "b", "c"])
  with pytest.raises(DataFormatError, match=r"train_position.npy: sample 2 \(c\) has NaN"):
    readers.load_dataset("aimclr", str(tmp_path), "train")


def test_inf_beyond_first_chunk_fails_when_read(tmp_path, monkeypatch):
  monkeypatch.setattr(readers, "_CHECK_CHUNK", 2)
  rng = np.random.default_rng(9)
  x = _skeletons(rng, 5, 4)
  x[3, 0, 0, 0, 1] = np.inf
  _write_aimclr(tmp_path, "train", x, [0, 1, 2, 3, 4], names=list("abcde"))
  dataset = readers.load_dataset("aimclr", str(tmp_path), "train")  # first chunk is clean
  np.testing.assert_array_equal(dataset.read(np.array([4, 0])), x[[4, 0]])
  with pytest.raises(DataFormatError, match=r"train_position.npy: sample 3 \(d\) has NaN"):
    dataset.read(np.array([4, 3, 1]))


def test_malformed_label_files(tmp_path):
  np.save(tmp_path / "train_position.npy", np.zeros((1, 3, 4, 25, 2), np.float32))
  (tmp_path / "train_label.pkl").write_bytes(b"not a pickle")
  with pytest.raises(DataFormatError, match="train_label.pkl: not a readable pickle"):
    readers.load_dataset("aimclr", str(tmp_path), "train")
  with open(tmp_path / "train_label.pkl", "wb") as f:
    pickle.dump({"labels": [0]}, f)
  with pytest.raises(DataFormatError, match=r"train_label.pkl: expected a pickled pair"):
    readers.load_dataset("aimclr", str(tmp_path), "train")
  np.savez(tmp_path / "c.npz", x_train=np.zeros((2, 2, 150)), y_train=np.ones((2, 3)))
  with pytest.raises(DataFormatError, match="c.npz: y_train must be one-hot"):
    readers.load_dataset("ctrgcn", str(tmp_path / "c.npz"), "train")
