"""PKU-MMD skeleton text, label files, clip cutting, names and split files."""
import re

import numpy as np
import pytest

from freqjax.data import pku
from freqjax.data.errors import DataFormatError


def write_video(path, frames, seed=0, second_person_from=None):
  """Writes `frames` lines of 150 numbers; returns them as (frames, 2, 25, 3)."""
  values = np.round(np.random.default_rng(seed).normal(size=(frames, 2, 25, 3)), 6)
  if second_person_from is None:
    values[:, 1] = 0
  else:
    values[:second_person_from, 1] = 0
  path.write_text("\n".join(" ".join(f"{v:.6f}" for v in row.ravel()) for row in values) + "\n")
  return values


def test_read_sequence_layout(tmp_path):
  path = tmp_path / "0002-L.txt"
  values = write_video(path, 12, second_person_from=5)
  sequence = pku.read_sequence(path)
  assert sequence.shape == (3, 12, 25, 2)
  # person p, joint v, axis c of frame t is value 75 p + 3 v + c of line t.
  np.testing.assert_allclose(sequence[2, 7, 24, 1], values[7, 1, 24, 2])
  np.testing.assert_allclose(sequence, values.transpose(3, 0, 2, 1), atol=1e-9)
  assert not sequence[:, :5, :, 1].any() and sequence[:, 5:, :, 1].any()


def test_labels_and_clip_cutting(tmp_path):
  video = tmp_path / "0002-L.txt"
  values = write_video(video, 40)
  labels = tmp_path / "label_0002-L.txt"
  labels.write_text("13,3,10,1\n\n51,11,40,2\n1,1,1\n")
  clips = pku.read_labels(labels)
  assert [(c.index, c.action, c.start, c.end, c.label) for c in clips] == [
      (1, 13, 3, 10, 12), (2, 51, 11, 40, 50), (3, 1, 1, 1, 0)]
  sequence = pku.read_sequence(video)
  for clip in clips:
    cut = pku.cut_clip(sequence, clip, labels, video)
    # 1-based inclusive [start, end] of the file's frames.
    np.testing.assert_allclose(cut, values[clip.start - 1:clip.end].transpose(3, 0, 2, 1))
    assert cut.shape[1] == clip.end - clip.start + 1


def test_clip_beyond_the_sequence_names_the_label_file(tmp_path):
  video = tmp_path / "0002-L.txt"
  write_video(video, 40)
  labels = tmp_path / "labels.txt"
  labels.write_text("5,30,41,1\n")
  clip, = pku.read_labels(labels)
  with pytest.raises(DataFormatError, match=f"^{re.escape(str(labels))}: clip 1: frames "
                     f"30-41 end beyond the 40 frames of {re.escape(str(video))}"):
    pku.cut_clip(pku.read_sequence(video), clip, labels, video)


def test_sample_names_follow_the_reference():
  assert pku.Clip("0002-L", 4, 13, 1, 2).sample_name("pku1") == "F002V001C013L004.skeleton"
  assert pku.Clip("0364-R", 21, 51, 1, 2).sample_name("pku1") == "F364V003C051L021.skeleton"
  assert pku.Clip("A01N13-M", 1, 7, 1, 2).sample_name("pku2") == "A001N013V002C007L001.skeleton"
  with pytest.raises(DataFormatError, match=r"^A01N13-M: not a PKU-MMD pku1 video id"):
    pku.sample_prefix("A01N13-M", "pku1")
  with pytest.raises(ValueError, match="unknown PKU-MMD phase 'pku3'"):
    pku.is_video_id("0002-L", "pku3")


@pytest.mark.parametrize("text, problem", [
    ("52,1,5,1\n", r"line 1: class id 52 is outside 1-51"),
    ("1,1,5,1\n0,1,5,1\n", r"line 2: class id 0 is outside 1-51"),
    ("1;1;5;1\n", r"line 1: expected 'action,start,end,confidence' \(integers\), got '1;1;5;1'"),
    ("1,a,5,1\n", r"line 1: expected 'action,start,end,confidence'"),
    ("1,2.5,5,1\n", r"line 1: expected 'action,start,end,confidence'"),
    ("1,9,5,1\n", r"line 1: frames 9-5 are not a range"),
    ("1,0,5,1\n", r"line 1: frames 0-5 are not a range"),
])
def test_bad_label_files(tmp_path, text, problem):
  path = tmp_path / "0002-L.txt"
  path.write_text(text)
  with pytest.raises(DataFormatError, match=f"^{re.escape(str(path))}: {problem}"):
    pku.read_labels(path)


def test_bad_skeleton_files(tmp_path):
  path = tmp_path / "0002-L.txt"
  write_video(path, 6)
  lines = path.read_text().splitlines()
  cases = {
      "short": (lines[:3] + [" ".join(lines[3].split()[:149])] + lines[4:],
                r"frame 4: expected 150 values \(2 persons x 25 joints x xyz\), got 149"),
      "text": (lines[:2] + [lines[2].replace(lines[2].split()[7], "x1", 1)] + lines[3:],
               r"frame 3: non-numeric value 'x1'"),
      "nan": (lines[:5] + [lines[5].replace(lines[5].split()[0], "nan", 1)],
              r"frame 6: NaN or infinite coordinate"),
      "empty": ([], r"no frames"),
  }
  for content, problem in cases.values():
    path.write_text("\n".join(content) + "\n")
    with pytest.raises(DataFormatError, match=f"^{re.escape(str(path))}: {problem}"):
      pku.read_sequence(path)


def test_official_split_file(tmp_path):
  path = tmp_path / "cross-subject.txt"
  path.write_text("Training videos: \n0002-L, 0002-M, 0002-R,\n0003-L, \n"
                  "Validataion videos: \n0004-L, 0004-M\n")
  split = pku.read_split_file(path)
  assert split.train == {"0002-L", "0002-M", "0002-R", "0003-L"}
  assert split.val == {"0004-L", "0004-M"}
  assert [split.part_of(v) for v in ("0003-L", "0004-M", "0005-L")] == ["train", "val", None]


def test_plain_split_file_makes_every_other_video_validation(tmp_path):
  path = tmp_path / "train_videos.txt"
  path.write_text("0002-L\n0002-M\n\n0003-R\n")
  split = pku.read_split_file(path)
  assert split.train == {"0002-L", "0002-M", "0003-R"} and split.val is None
  assert [split.part_of(v) for v in ("0002-M", "0009-L")] == ["train", "val"]


@pytest.mark.parametrize("text, problem", [
    ("Training videos:\n0002-L, 0003-L\nValidation videos:\n0003-L\n",
     "video 0003-L is listed for both training and validation"),
    ("0002-L\nTraining videos:\n0003-L\n", r"line 1: video ids before a 'Training videos:'"),
    ("Validataion videos:\n0003-L\n", "lists no training video"),
])
def test_bad_split_files(tmp_path, text, problem):
  path = tmp_path / "cross-view.txt"
  path.write_text(text)
  with pytest.raises(DataFormatError, match=f"^{re.escape(str(path))}: {problem}"):
    pku.read_split_file(path)
