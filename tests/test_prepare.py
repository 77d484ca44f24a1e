"""`python -m freqjax.data.prepare` end to end on tiny raw NTU and PKU-MMD trees."""
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from freqjax.data import prepare
from freqjax.data import transform

INFO = "72057594037931101 0 1 1 1 1 0 -0.2 0.1 2"
# How the command line reports bad input (freqjax.cli): one line, exit status 2.
ERROR = "python -m freqjax.data.prepare: error: "


@pytest.fixture(autouse=True)
def one_line_errors(monkeypatch):
  monkeypatch.delenv("FREQJAX_TRACEBACK", raising=False)  # subprocesses inherit it too


def write_skeleton(path, frames):
  """Writes the `.skeleton` text of `frames` (per frame, a list of (25, 3) bodies)."""
  lines = [str(len(frames))]
  for bodies in frames:
    lines.append(str(len(bodies)))
    for body in bodies:
      lines += [INFO, "25"]
      lines += [f"{x:.5f} {y:.5f} {z:.5f} 250.1 180.2 900.3 500.4 0.1 0.2 0.3 0.4 2"
                for x, y, z in body]
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write("\n".join(lines) + "\n")


def motion(seed, frames):
  """(frames, 25, 3) coordinates, 5 decimals (exact in the text), shoulders apart."""
  rng = np.random.default_rng(seed)
  x = rng.normal(scale=0.3, size=(frames, 25, 3)) + [0, 0, 3]
  x[:, 8] = x[:, 4] + [0.2, 0.01, 0.25]
  return np.round(x, 5)


# name -> (bodies per frame as arrays (frames, 25, 3), or None for a missing skeleton)
NTU = {
    "S001C001P001R001A001": [motion(1, 30)],
    "S001C002P003R001A002": [motion(2, 40), motion(3, 40)],
    "S001C002P005R002A008": None,
    "S001C003P002R002A060": [motion(4, 310)],
    "S002C001P004R001A005": [motion(5, 25)],
    "S018C001P001R001A061": [motion(6, 20)],
}


def ntu_tree(root):
  for name, bodies in NTU.items():
    folder = "nturgbd_skeletons_s018_to_s032" if name.startswith("S018") else "nturgb+d_skeletons"
    path = os.path.join(root, folder, name + ".skeleton")
    if bodies is None:
      write_skeleton(path, [[] for _ in range(12)])
    else:
      write_skeleton(path, [[b[t] for b in bodies] for t in range(len(bodies[0]))])
  return str(root)


def raw_array(name):
  """The (3, 300, 25, 2) raw array of an NTU sample, from the coordinates written."""
  x = np.zeros((3, len(NTU[name][0][:, 0, 0]), 25, 2))
  for m, body in enumerate(NTU[name]):
    x[..., m] = body.transpose(2, 0, 1)
  return transform.pad_or_crop(x)


def load(out, benchmark, part, data="position"):
  directory = os.path.join(out, benchmark)
  x = np.load(os.path.join(directory, f"{part}_{data}.npy"), mmap_mode="r")
  with open(os.path.join(directory, f"{part}_label.pkl"), "rb") as f:
    labels = pickle.load(f)
  with open(os.path.join(directory, f"{part}_manifest.json")) as f:
    manifest = json.load(f)
  return x, labels, manifest


def leftovers(out):
  return [name for _, _, files in os.walk(out) for name in files if name.endswith(".partial")]


def test_ntu60_end_to_end(tmp_path, capsys):
  raw, out = ntu_tree(tmp_path / "raw"), str(tmp_path / "out")
  assert prepare.main(["ntu60", "--raw", raw, "--out", out, "--workers", "1", "--quiet"]) == 0
  expected = {
      ("xsub", "train"): ["S001C001P001R001A001", "S001C003P002R002A060", "S002C001P004R001A005"],
      ("xsub", "val"): ["S001C002P003R001A002"],
      ("xview", "train"): ["S001C002P003R001A002", "S001C003P002R002A060"],
      ("xview", "val"): ["S001C001P001R001A001", "S002C001P004R001A005"],
  }
  for (benchmark, part), names in expected.items():
    x, labels, manifest = load(out, benchmark, part)
    # AimCLR's label file: a tuple (list of file names, list of int labels).
    assert type(labels) is tuple and type(labels[0]) is list and type(labels[1]) is list
    assert labels[0] == [name + ".skeleton" for name in names]
    assert labels[1] == [int(name[-3:]) - 1 for name in names]
    assert all(type(label) is int for label in labels[1])
    assert x.dtype == np.float32 and x.shape == (len(names), 3, 50, 25, 2)
    for row, name in enumerate(names):
      np.testing.assert_allclose(x[row], transform.aimclr_transform(raw_array(name), 50),
                                 atol=1e-6)
    assert not np.asarray(x[:, :, :, 20]).any()  # centred on joint 21
    counts = np.zeros(60, int)
    np.add.at(counts, labels[1], 1)
    assert manifest["class_counts"] == counts.tolist()
    assert manifest["num_samples"] == len(names) and manifest["frames"] == 50
    assert manifest["dataset"] == "ntu60" and manifest["source"] == os.path.abspath(raw)
  # The missing skeleton (P005, camera 2) is counted where it would have gone.
  assert load(out, "xsub", "train")[2]["skipped_missing_samples"] == [
      "S001C002P005R002A008.skeleton"]
  assert load(out, "xview", "train")[2]["skipped_missing"] == 1
  assert load(out, "xview", "val")[2]["skipped_missing"] == 0
  assert load(out, "xsub", "train")[2]["cropped_to_300_frames"] == 1
  # Two bodies: the second person is kept, centred and rotated separately.
  x, _, _ = load(out, "xsub", "val")
  assert np.asarray(x[0, :, :, :, 1]).any()
  assert not leftovers(out)
  assert "S018" not in capsys.readouterr().out


def test_rerun_skips_finished_parts_and_redoes_missing_ones(tmp_path, capsys):
  raw, out = ntu_tree(tmp_path / "raw"), str(tmp_path / "out")
  args = ["ntu60", "--raw", raw, "--out", out, "--workers", "1", "--quiet"]
  assert prepare.main(args) == 0
  files = [os.path.join(out, b, f"{p}_{k}") for b in ("xsub", "xview") for p in ("train", "val")
           for k in ("position.npy", "label.pkl", "manifest.json")]
  stamps = {path: os.stat(path).st_mtime_ns for path in files}
  capsys.readouterr()
  assert prepare.main(args) == 0
  assert "nothing to do" in capsys.readouterr().out
  assert {path: os.stat(path).st_mtime_ns for path in files} == stamps
  # A part without its manifest (an interrupted run) is written again, the others not.
  redo = os.path.join(out, "xview", "val_manifest.json")
  os.remove(redo)
  assert prepare.main(args) == 0
  written = capsys.readouterr().out.strip().splitlines()
  assert len(written) == 1 and "xview/val_position.npy: 2 samples" in written[0]
  assert os.path.exists(redo)
  assert all(os.stat(path).st_mtime_ns == stamps[path] for path in files
             if "xview/val" not in path)
  # Another frame count into the same folder is refused.
  assert prepare.main(args + ["--frames", "64"]) == 2
  error = capsys.readouterr().err.strip()
  assert re.fullmatch(re.escape(ERROR) + r".*xsub/train_manifest\.json: holds ntu60 at 50 "
                      r"frames .*; this run asks for ntu60 at 64 frames: choose another --out",
                      error)


def test_rerun_with_other_inputs_refuses_and_keeps_the_parts(tmp_path, capsys):
  # NTU-120 from its first archive, then from both: the second run must not keep half.
  root = ntu_tree(tmp_path / "raw")
  first = os.path.join(root, "nturgb+d_skeletons")
  out = str(tmp_path / "out")
  args = ["ntu120", "--out", out, "--workers", "1", "--quiet", "--raw"]
  assert prepare.main(args + [first]) == 0
  inputs = load(out, "xsub", "train", data="position")[2]["inputs"]
  assert inputs["raw"] == os.path.realpath(first) and inputs["raw_files"] == 5
  files = [os.path.join(d, f) for d, _, names in os.walk(out) for f in names]
  stamps = {path: os.stat(path).st_mtime_ns for path in files}
  capsys.readouterr()

  def refused(raw, *differences):
    assert prepare.main(args + [raw]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1, error
    assert error.startswith(ERROR + os.path.join(out, "xsub", "train_manifest.json") +
                            ": made from other inputs than this run's: "), error
    assert error.endswith(f"choose another --out, or delete {out} to prepare it again\n")
    for difference in differences:
      assert difference in error, (difference, error)

  refused(root, f"--raw {os.path.realpath(first)!r} (this run: {os.path.realpath(root)!r})",
          "raw files used 5 (this run: 6)")
  # The same folder through a link is the same input.
  os.symlink(first, tmp_path / "link")
  assert prepare.main(args + [str(tmp_path / "link")]) == 0
  assert "nothing to do" in capsys.readouterr().out
  # A file added to the folder, or one renamed (same count, other samples).
  added = os.path.join(first, "S003C001P001R001A001.skeleton")
  write_skeleton(added, [[joints] for joints in motion(7, 20)])
  refused(first, "raw files used 5 (this run: 6)")
  os.rename(added, os.path.join(first, "S001C001P001R001A003.skeleton"))
  os.remove(os.path.join(first, "S001C001P001R001A001.skeleton"))
  refused(first, "the names of the 5 raw files differ")
  assert {path: os.stat(path).st_mtime_ns for path in files} == stamps
  # Parts of an older freqjax, whose manifests lack the inputs, cannot be checked.
  path = os.path.join(out, "xsub", "train_manifest.json")
  with open(path) as f:
    manifest = json.load(f)
  del manifest["inputs"]
  with open(path, "w") as f:
    json.dump(manifest, f)
  assert prepare.main(args + [first]) == 2
  assert re.fullmatch(re.escape(ERROR + path) + r": written by an older freqjax that did not "
                      r"record its inputs .*: choose another --out, or delete .*\n",
                      capsys.readouterr().err)


def test_out_that_is_a_file_leaves_no_temporary_file(tmp_path, capsys):
  raw = ntu_tree(tmp_path / "raw")
  args = ["ntu60", "--raw", raw, "--workers", "1", "--quiet", "--out"]
  out = tmp_path / "out"
  out.write_text("")
  assert prepare.main(args + [str(out)]) == 2
  assert capsys.readouterr().err == f"{ERROR}{out}: not a directory; --out is the folder that " \
                                    "gets one sub-folder per benchmark\n"
  # xview is a file: the xsub files already begun are removed.
  out = tmp_path / "out2"
  out.mkdir()
  (out / "xview").write_text("")
  assert prepare.main(args + [str(out)]) == 2
  assert capsys.readouterr().err == f"{ERROR}{out / 'xview'}: File exists\n"
  assert sorted(os.listdir(out)) == ["xsub", "xview"] and not os.listdir(out / "xsub")


REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def children(pid):
  """The ids of the live (not zombie) processes whose parent is `pid`, from /proc."""
  found = []
  for name in os.listdir("/proc"):
    try:
      with open(f"/proc/{name}/stat") as f:
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ")".
        state, ppid = f.read().rsplit(")", 1)[1].split()[:2]
    except (OSError, ValueError):
      continue
    if name.isdigit() and int(ppid) == pid and state != "Z":
      found.append(int(name))
  return found


def command(pid):
  with open(f"/proc/{pid}/cmdline", "rb") as f:
    return f.read().decode(errors="replace")


def alive(pid):
  try:
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except OSError:
    return False


@pytest.fixture
def stuck_prepare(tmp_path):
  """A `prepare --workers 2` subprocess one of whose workers waits, forever, on a raw file.

  The file is a FIFO: it opens once this side opens it for writing, then its read blocks
  until the writer closes. Yields (process, output folder, worker pids).
  """
  raw = ntu_tree(tmp_path / "raw")
  fifo = os.path.join(raw, "nturgb+d_skeletons", "S001C001P009R001A001.skeleton")
  os.mkfifo(fifo)
  out = str(tmp_path / "out")
  process = subprocess.Popen(
      [sys.executable, "-m", "freqjax.data.prepare", "ntu60", "--raw", raw, "--out", out,
       "--workers", "2", "--quiet"], cwd=REPOSITORY, stderr=subprocess.PIPE, text=True)
  writer, deadline = None, time.monotonic() + 60
  while writer is None:
    assert process.poll() is None and time.monotonic() < deadline, process.communicate()
    try:  # succeeds once a worker has opened the FIFO to read it
      writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
      time.sleep(0.05)
  workers = [pid for pid in children(process.pid) if "resource_tracker" not in command(pid)]
  assert len(workers) == 2
  try:
    yield process, out, workers
  finally:
    for pid in children(process.pid) + workers:
      if alive(pid):
        os.kill(pid, signal.SIGKILL)
    process.kill()
    process.communicate()
    os.close(writer)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_prepare_is_killed(stuck_prepare):
  process, _, workers = stuck_prepare
  everyone = children(process.pid)  # the workers and multiprocessing's resource tracker
  process.send_signal(signal.SIGKILL)
  process.wait()
  deadline = time.monotonic() + 10
  while any(map(alive, everyone)) and time.monotonic() < deadline:
    time.sleep(0.1)
  assert not [pid for pid in everyone if alive(pid)], (everyone, workers)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_killed_by_the_system_is_one_line(stuck_prepare):
  process, out, workers = stuck_prepare
  os.kill(workers[0], signal.SIGKILL)  # as the kernel's out-of-memory killer would
  _, error = process.communicate(timeout=60)
  assert process.returncode == 2
  assert error == (f"{ERROR}a worker process ended abruptly, most often killed by the system "
                   "for lack of memory; the unfinished parts were not kept: run again with "
                   "fewer --workers (this run: 2) or with more memory free\n")
  assert not [name for _, _, names in os.walk(out) for name in names]


def test_ntu120_raw_arrays_and_xset(tmp_path):
  raw, out = ntu_tree(tmp_path / "raw"), str(tmp_path / "out")
  assert prepare.main(["ntu120", "--raw", raw, "--out", out, "--frames", "raw", "--workers",
                       "1", "--quiet"]) == 0
  assert sorted(os.listdir(out)) == ["xset", "xsub"]
  x, labels, manifest = load(out, "xset", "train", data="data")  # even setups
  assert labels == (["S002C001P004R001A005.skeleton", "S018C001P001R001A061.skeleton"], [4, 60])
  assert x.shape == (2, 3, 300, 25, 2) and manifest["frames"] == 300
  np.testing.assert_array_equal(x[1], raw_array("S018C001P001R001A061"))
  x, labels, _ = load(out, "xset", "val", data="data")
  assert labels[0][-1] == "S001C003P002R002A060.skeleton"
  np.testing.assert_array_equal(x[-1, :, :, :, 0],
                                NTU["S001C003P002R002A060"][0][5:305].transpose(2, 0, 1)
                                .astype(np.float32))
  _, labels, _ = load(out, "xsub", "train", data="data")  # performer 1 trains in both
  assert "S018C001P001R001A061.skeleton" in labels[0]


def test_two_workers_match_one_and_worker_errors_stop_cleanly(tmp_path, capsys):
  raw = ntu_tree(tmp_path / "raw")
  bad = os.path.join(raw, "nturgb+d_skeletons", "S001C001P007R001A003.skeleton")
  with open(bad, "w") as f:
    f.write("2\n1\n" + INFO + "\n25\n0 0 0\n")  # truncated in frame 1
  out2 = str(tmp_path / "two")
  assert prepare.main(["ntu60", "--raw", raw, "--out", out2, "--workers", "2", "--quiet"]) == 2
  error = capsys.readouterr().err
  assert error.count("\n") == 1
  assert error.startswith(f"{ERROR}{bad}: file ends after line 5 inside the joints of body 1 "
                          "of frame 1")
  assert not leftovers(out2) and not [f for _, _, fs in os.walk(out2) for f in fs]
  os.remove(bad)
  out1 = str(tmp_path / "one")
  assert prepare.main(["ntu60", "--raw", raw, "--out", out1, "--workers", "1", "--quiet"]) == 0
  assert prepare.main(["ntu60", "--raw", raw, "--out", out2, "--workers", "2", "--quiet"]) == 0
  for benchmark in ("xsub", "xview"):
    for name in ("train_position.npy", "val_position.npy", "train_label.pkl", "val_label.pkl"):
      with open(os.path.join(out1, benchmark, name), "rb") as a, \
           open(os.path.join(out2, benchmark, name), "rb") as b:
        assert a.read() == b.read(), (benchmark, name)


@pytest.mark.parametrize("name, content, problem", [
    ("S001C001P001R001A061.skeleton", None, r"action A061 is outside ntu60's classes"),
    ("S001C001P001R001.skeleton", None, r"not an NTU sample name"),
    ("S001C001P001R001A003.skeleton", "1\n1\n" + INFO + "\n25\n" +
     "0.1 0.2 nan 1 2 3 4 5 6 7 8 2\n" * 25, r"line 5: NaN or infinite coordinate"),
])
def test_ntu_bad_input_writes_nothing(tmp_path, capsys, name, content, problem):
  raw = ntu_tree(tmp_path / "raw")
  path = os.path.join(raw, "nturgb+d_skeletons", name)
  if content is None:
    write_skeleton(path, [[motion(9, 1)[0]]])
  else:
    with open(path, "w") as f:
      f.write(content)
  out = str(tmp_path / "out")
  assert prepare.main(["ntu60", "--raw", raw, "--out", out, "--workers", "1", "--quiet"]) == 2
  error = capsys.readouterr().err
  assert re.match(re.escape(ERROR) + f"{re.escape(path)}: {problem}", error), error
  assert not os.path.exists(out) or not [f for _, _, fs in os.walk(out) for f in fs]


def test_no_skeleton_files_and_unknown_dataset(tmp_path, capsys):
  assert prepare.main(["ntu60", "--raw", str(tmp_path), "--out", str(tmp_path / "o"),
                       "--quiet"]) == 2
  assert re.match(re.escape(ERROR) + f"{re.escape(str(tmp_path))}: no .skeleton files",
                  capsys.readouterr().err)
  with pytest.raises(SystemExit):
    prepare.main(["ntu90", "--raw", str(tmp_path), "--out", str(tmp_path / "o")])
  with pytest.raises(ValueError, match="unknown dataset 'kinetics'"):
    prepare.prepare("kinetics", str(tmp_path), str(tmp_path / "o"))


def write_video(path, frames, seed, zero=()):
  values = np.round(np.random.default_rng(seed).normal(size=(frames, 2, 25, 3)), 5)
  values[:, :, 8] = values[:, :, 4] + [0.2, 0.0, 0.25]
  values[frames // 2:, 1] = 0  # the second person leaves halfway
  values[list(zero)] = 0
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    f.write("\n".join(" ".join(f"{v:.5f}" for v in row.ravel()) for row in values) + "\n")
  return values.transpose(3, 0, 2, 1)  # (3, F, 25, 2)


def pku_tree(root):
  videos = {
      "0002-L": (write_video(f"{root}/PKU_Skeleton_Renew/0002-L.txt", 60, 1),
                 "13,3,20,1\n2,21,60,2\n"),
      "0002-M": (write_video(f"{root}/PKU_Skeleton_Renew/0002-M.txt", 50, 2), "7,1,50,1\n"),
      "0003-L": (write_video(f"{root}/PKU_Skeleton_Renew/0003-L.txt", 40, 3, zero=range(4, 10)),
                 "5,5,10,1\n51,11,40,1\n"),
  }
  for video, (_, labels) in videos.items():
    os.makedirs(f"{root}/Train_Label_PKU_final", exist_ok=True)
    with open(f"{root}/Train_Label_PKU_final/{video}.txt", "w") as f:
      f.write(labels)
  os.makedirs(f"{root}/splits", exist_ok=True)
  with open(f"{root}/splits/cross-subject.txt", "w") as f:
    f.write("Training videos: \n0002-L, 0002-M, \nValidataion videos: \n0003-L, \n")
  with open(f"{root}/splits/cross-view.txt", "w") as f:
    f.write("Training videos: \n0002-M\nValidataion videos: \n0002-L\n")
  return str(root), {video: values for video, (values, _) in videos.items()}


def test_pku1_end_to_end(tmp_path):
  raw, videos = pku_tree(tmp_path / "raw")
  out = str(tmp_path / "out")
  assert prepare.main(["pku1", "--raw", raw, "--out", out, "--workers", "1", "--quiet"]) == 0
  x, labels, manifest = load(out, "xsub", "train")
  # Name order: video F002V001 before F002V002; within a video by class then line.
  assert labels == (["F002V001C002L002.skeleton", "F002V001C013L001.skeleton",
                     "F002V002C007L001.skeleton"], [1, 12, 6])
  clips = [("0002-L", 21, 60), ("0002-L", 3, 20), ("0002-M", 1, 50)]
  for row, (video, start, end) in enumerate(clips):
    expected = transform.aimclr_transform(transform.pad_or_crop(videos[video][:, start - 1:end]),
                                          50)
    np.testing.assert_allclose(x[row], expected, atol=1e-6)
  assert manifest["num_classes"] == 51 and manifest["class_counts"][12] == 1
  assert manifest["split_file"].endswith("cross-subject.txt")
  x, labels, manifest = load(out, "xsub", "val")
  # Clip 1 of 0003-L covers only zeroed frames: skipped as a missing skeleton.
  assert labels == (["F003V001C051L002.skeleton"], [50])
  assert manifest["skipped_missing_samples"] == ["F003V001C005L001.skeleton"]
  _, labels, manifest = load(out, "xview", "val")
  assert labels[0] == ["F002V001C002L002.skeleton", "F002V001C013L001.skeleton"]
  assert manifest["unlisted_videos"] == ["0003-L"]  # in neither list of cross-view.txt


def test_pku_split_file_added_later_keeps_the_other_benchmark(tmp_path, capsys):
  raw, _ = pku_tree(tmp_path / "raw")
  cross_view = os.path.join(raw, "splits", "cross-view.txt")
  os.rename(cross_view, cross_view + ".later")
  out = str(tmp_path / "out")
  args = ["pku1", "--raw", raw, "--out", out, "--workers", "1", "--quiet"]
  assert prepare.main(args) == 0
  assert sorted(os.listdir(out)) == ["xsub"]
  inputs = load(out, "xsub", "val")[2]["inputs"]
  assert inputs["split_file"] == os.path.realpath(os.path.join(raw, "splits",
                                                               "cross-subject.txt"))
  assert inputs["raw_files"] == 3 and inputs["label_dir"].endswith("Train_Label_PKU_final")
  capsys.readouterr()
  # Each benchmark's parts depend on its own split file only: xview is added, xsub kept.
  os.rename(cross_view + ".later", cross_view)
  assert prepare.main(args) == 0
  written = capsys.readouterr().out.splitlines()
  assert [line.split(":")[0] for line in written] == [
      os.path.join(out, "xview", f"{part}_position.npy") for part in ("train", "val")]


@pytest.mark.parametrize("video, labels, problem", [
    ("0002-M", "7,1,51,1\n", r"clip 1: frames 1-51 end beyond the 50 frames of .*0002-M\.txt"),
    ("0002-M", "52,1,50,1\n", r"line 1: class id 52 is outside 1-51"),
])
def test_pku_bad_labels_write_nothing(tmp_path, capsys, video, labels, problem):
  raw, _ = pku_tree(tmp_path / "raw")
  path = os.path.join(raw, "Train_Label_PKU_final", f"{video}.txt")
  with open(path, "w") as f:
    f.write(labels)
  out = str(tmp_path / "out")
  assert prepare.main(["pku1", "--raw", raw, "--out", out, "--workers", "1", "--quiet"]) == 2
  assert re.match(re.escape(ERROR) + f"{re.escape(path)}: {problem}", capsys.readouterr().err)
  assert not [f for _, _, fs in os.walk(out) for f in fs]


def test_pku_wrong_phase_and_missing_skeleton(tmp_path, capsys):
  raw, _ = pku_tree(tmp_path / "raw")
  out = str(tmp_path / "out")
  assert prepare.main(["pku2", "--raw", raw, "--out", out, "--quiet"]) == 2
  assert re.match(re.escape(ERROR) + r".*0002-L\.txt: not a PKU-MMD pku2 label file name "
                  r"\(e\.g\. A01N01-L\.txt\)", capsys.readouterr().err)
  os.remove(os.path.join(raw, "PKU_Skeleton_Renew", "0003-L.txt"))
  assert prepare.main(["pku1", "--raw", raw, "--out", out, "--quiet"]) == 2
  assert re.match(re.escape(ERROR) + r".*Train_Label_PKU_final/0003-L\.txt: no skeleton file "
                  r".*0003-L\.txt", capsys.readouterr().err)
