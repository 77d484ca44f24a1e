"""Raw NTU `.skeleton` parsing, sample names and benchmark splits against hand-built files."""
import re

import numpy as np
import pytest

from freqjax.data import ntu
from freqjax.data.errors import DataFormatError

# The benchmark lists as the NTU papers (and docs/method.md, "Data layout and streams")
# give them, typed out independently.
XSUB60 = [1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38]
XSUB120_EXTRA = [45, 46, 47, 49, 50, 52, 53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82,
                 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97, 98, 100, 103]


def skeleton_text(frames, info="72057594037931101 0 1 1 1 1 0 -0.2 0.1 2"):
  """The `.skeleton` text of `frames`: a list (per frame) of lists of (25, 3) bodies."""
  rng = np.random.default_rng(0)
  lines = [str(len(frames))]
  for bodies in frames:
    lines.append(str(len(bodies)))
    for body in bodies:
      lines += [info, "25"]
      for x, y, z in body:
        extra = rng.uniform(0, 500, size=4).tolist() + rng.uniform(-1, 1, size=4).tolist()
        lines.append(" ".join([f"{x:.7g}", f"{y:.7g}", f"{z:.7g}"] +
                              [f"{v:.7g}" for v in extra] + ["2"]))
  return "\n".join(lines) + "\n"


def body(seed):
  return np.round(np.random.default_rng(seed).normal(size=(25, 3)), 5)


def test_read_skeleton_keeps_the_first_two_bodies_listed_per_frame(tmp_path):
  a, b, c, d = body(1), body(2), body(3), body(4)
  frames = [[a], [a, b], [b, c, d], [], [c]]
  path = tmp_path / "S001C001P001R001A001.skeleton"
  path.write_text(skeleton_text(frames))
  xyz, bodies = ntu.read_skeleton(path)
  expected = np.zeros((5, 2, 25, 3))  # (frame, slot, joint, xyz)
  expected[0, 0] = a
  expected[1, 0], expected[1, 1] = a, b
  expected[2, 0], expected[2, 1] = b, c  # the third body listed (d) is dropped
  expected[4, 0] = c  # slot 0 is whoever is listed first, bodyIDs are not tracked
  assert xyz.shape == (3, 5, 25, 2)
  np.testing.assert_allclose(xyz, expected.transpose(3, 0, 2, 1), rtol=0, atol=1e-6)
  np.testing.assert_array_equal(bodies, [1, 2, 3, 0, 1])


def test_no_body_in_any_frame_is_a_missing_skeleton(tmp_path):
  path = tmp_path / "S001C002P005R002A008.skeleton"
  path.write_text("3\n0\n0\n0\n")
  xyz, bodies = ntu.read_skeleton(path)
  assert xyz.shape == (3, 3, 25, 2) and not xyz.any()
  assert not bodies.any()


def test_sample_name_fields_and_label():
  sample = ntu.parse_sample_name("/data/S017C003P020R002A060.skeleton")
  assert sample == ntu.SampleName(setup=17, camera=3, performer=20, replication=2, action=60)
  assert sample.label == 59
  assert ntu.parse_sample_name("S032C001P106R001A120").label == 119
  with pytest.raises(DataFormatError, match=r"^S01C001P001R001A001\.skeleton: not an NTU"):
    ntu.parse_sample_name("S01C001P001R001A001.skeleton")


def name(setup=1, camera=1, performer=1, action=1):
  return ntu.parse_sample_name(f"S{setup:03d}C{camera:03d}P{performer:03d}R001A{action:03d}")


def test_ntu60_xsub_and_xview_rules():
  for performer in range(1, 41):
    assert ntu.is_training(name(performer=performer), "ntu60", "xsub") == (performer in XSUB60)
    assert ntu.split_of(name(performer=performer), "ntu60", "xsub") == (
        "train" if performer in XSUB60 else "val")
  for camera in (1, 2, 3):
    assert ntu.is_training(name(camera=camera), "ntu60", "xview") == (camera in (2, 3))
  # xview ignores the performer, xsub the camera.
  assert ntu.is_training(name(camera=2, performer=3), "ntu60", "xview")
  assert not ntu.is_training(name(camera=2, performer=3), "ntu60", "xsub")


def test_ntu120_xsub_and_xset_rules():
  for performer in range(1, 107):
    expected = performer in XSUB60 or performer in XSUB120_EXTRA
    assert ntu.is_training(name(performer=performer), "ntu120", "xsub") == expected
  for setup in range(1, 33):
    assert ntu.is_training(name(setup=setup), "ntu120", "xset") == (setup % 2 == 0)
  assert len(ntu.NTU120_XSUB_TRAIN_PERFORMERS) == 53


def test_dataset_membership_and_class_range():
  assert ntu.in_dataset(name(setup=17), "ntu60")
  assert not ntu.in_dataset(name(setup=18), "ntu60")
  assert ntu.in_dataset(name(setup=32), "ntu120")
  ntu.check_action(name(action=60), "ntu60", "f.skeleton")
  with pytest.raises(DataFormatError, match=r"^f\.skeleton: action A061 is outside ntu60"):
    ntu.check_action(name(action=61), "ntu60", "f.skeleton")
  with pytest.raises(DataFormatError, match="outside ntu120"):
    ntu.check_action(name(action=0), "ntu120", "f.skeleton")


def test_unknown_benchmark_or_dataset():
  with pytest.raises(ValueError, match=r"unknown benchmark 'xset' for ntu60.*xsub.*xview"):
    ntu.is_training(name(), "ntu60", "xset")
  with pytest.raises(ValueError, match=r"unknown benchmark 'xview' for ntu120"):
    ntu.split_of(name(), "ntu120", "xview")
  with pytest.raises(ValueError, match="unknown NTU dataset 'ntu90'"):
    ntu.is_training(name(), "ntu90", "xsub")


def _replace_line(text, number, new):
  lines = text.split("\n")
  lines[number - 1] = new
  return "\n".join(lines)


GOOD = skeleton_text([[body(1)], [body(1), body(2)]])
# Line numbers in GOOD: 1 frame count; 2 bodies of frame 1; 3 info; 4 joint count; 5-29
# joints; 30 bodies of frame 2; 31 info; 32 joint count; 33-57 joints of body 1; ...


@pytest.mark.parametrize("text, problem", [
    ("\n".join(GOOD.split("\n")[:40]), r"file ends after line 40 inside the joints of body 1 "
     r"of frame 2 \(truncated"),
    ("\n".join(GOOD.split("\n")[:57]) + "\n", r"file ends after line 57 where the info line of "
     r"body 2 of frame 2 was expected \(truncated"),
    ("3\n" + "\n".join(GOOD.split("\n")[1:]), r"file ends after line \d+ where the body count "
     r"of frame 3 was expected"),
    (_replace_line(GOOD, 10, "0.1 0.2 abc 1 2 3 4 5 6 7 8 2"),
     r"line 10: non-numeric value 'abc' \(a joint line\)"),
    (_replace_line(GOOD, 11, "0.1 0.2 0.3 1 2 3 4 5 6 7 8"),
     r"line 11: expected 12 values \(a joint line\), got 11"),
    (_replace_line(GOOD, 31, "1 2 3"), r"line 31: expected 10 values \(a body info line\)"),
    (_replace_line(GOOD, 4, "24"), r"line 4: body 1 of frame 1 has 24 joints; NTU skeletons "
     r"have 25"),
    (_replace_line(GOOD, 30, "two"), r"line 30: expected the body count of frame 2 \(an "
     r"integer\), got 'two'"),
    (_replace_line(GOOD, 12, "nan 0.2 0.3 1 2 3 4 5 6 7 8 2"),
     r"line 12: NaN or infinite coordinate \(joint 8 of body 1 of frame 1\)"),
    (_replace_line(GOOD, 40, "0.1 inf 0.3 1 2 3 4 5 6 7 8 2"),
     r"line 40: NaN or infinite coordinate \(joint 8 of body 1 of frame 2\)"),
    (GOOD + "1\n", r"line \d+: content after the last of the 2 frames"),
    ("1000000000\n0\n", r"line 1 announces 1000000000 frames but only 1 lines follow"),
])
def test_malformed_files_raise_naming_the_file(tmp_path, text, problem):
  path = tmp_path / "S001C001P001R001A001.skeleton"
  path.write_text(text)
  with pytest.raises(DataFormatError, match=f"^{re.escape(str(path))}: {problem}"):
    ntu.read_skeleton(path)


def test_binary_file(tmp_path):
  path = tmp_path / "S001C001P001R001A001.skeleton"
  path.write_bytes(b"2\n\xff\xfe\x00")
  with pytest.raises(DataFormatError, match=f"^{re.escape(str(path))}: not a text file"):
    ntu.read_skeleton(path)


def test_good_reference_file_parses(tmp_path):
  # Guards the line numbers the malformed cases above rely on.
  path = tmp_path / "S001C001P001R001A001.skeleton"
  path.write_text(GOOD)
  xyz, bodies = ntu.read_skeleton(path)
  np.testing.assert_array_equal(bodies, [1, 2])
  np.testing.assert_allclose(xyz[:, 1, :, 1], body(2).T, atol=1e-6)
  assert GOOD.split("\n")[29] == "2" and GOOD.split("\n")[31] == "25"
