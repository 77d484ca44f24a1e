"""Each command line reports the user's mistakes as one line on stderr with exit status 2.

The commands run as the user runs them, `python -m ...` in a subprocess, so what is checked
is the whole of stderr. A few run in-process where that shows the same thing faster.
"""
import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from freqjax import cli
from freqjax.evaluation import ensemble
from freqjax.text import descriptions as descriptions_lib
from freqjax.text import embed

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = bytes(range(256)) * 4  # not UTF-8 from its byte 0x80 on


@pytest.fixture(autouse=True)
def one_line_errors(monkeypatch):
  monkeypatch.delenv(cli.TRACEBACK_ENV, raising=False)  # subprocesses inherit it too


def run(module, *args, cwd=REPOSITORY):
  """Runs `python -m module args` and returns (exit status, stderr)."""
  env = dict(os.environ, PYTHONPATH=REPOSITORY)
  result = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
  return result.returncode, result.stderr


def assert_one_line(status, stderr, prog, *parts):
  assert status == 2, stderr
  assert stderr.count("\n") == 1 and stderr.startswith(f"python -m {prog}: error: "), stderr
  for part in parts:
    assert str(part) in stderr, (part, stderr)


def test_embed_binary_descriptions_and_traceback(tmp_path):
  path = tmp_path / "descriptions.json"
  path.write_bytes(BINARY)
  out = tmp_path / "text.npz"
  status, stderr = run("freqjax.text.embed", "--descriptions", path, "--out", out)
  assert_one_line(status, stderr, "freqjax.text.embed", f"{path}: not UTF-8 text")
  # The flag shows where it came from; unexpected errors never lose theirs.
  status, stderr = run("freqjax.text.embed", "--descriptions", path, "--out", out,
                       "--traceback")
  assert status == 1 and stderr.startswith("Traceback (most recent call last):")
  assert stderr.rstrip().splitlines()[-1].startswith(
      f"freqjax.text.descriptions.DescriptionsError: {path}: not UTF-8 text")
  assert sorted(os.listdir(tmp_path)) == ["descriptions.json"]


def test_embed_out_is_a_directory(tmp_path):
  status, stderr = run("freqjax.text.embed", "--synthetic", "--out", tmp_path)
  assert_one_line(status, stderr, "freqjax.text.embed",
                  f"{tmp_path}: a directory; --out is the .npz file to write")
  assert not os.listdir(tmp_path)


def test_embed_descriptions_directory_or_missing_in_process(tmp_path, capsys):
  out = str(tmp_path / "text.npz")
  assert embed.main(["--descriptions", str(tmp_path), "--out", out]) == 2
  assert capsys.readouterr().err == (f"python -m freqjax.text.embed: error: {tmp_path}: a "
                                     "directory, not a descriptions JSON file\n")
  assert embed.main(["--descriptions", str(tmp_path / "no.json"), "--out", out]) == 2
  assert capsys.readouterr().err == (f"python -m freqjax.text.embed: error: {tmp_path}/no.json: "
                                     "descriptions file not found\n")
  assert not os.listdir(tmp_path)


def test_embed_removes_its_temporary_file_when_writing_fails(tmp_path, monkeypatch):
  class Encoder:
    name, random_init = "fake", True

    def encode(self, sentences, batch_size, dtype, progress):
      del batch_size, progress
      n = len(sentences)
      return (np.ones((n, 4), dtype), np.ones((n, 3, 4), dtype), np.ones((n, 3), bool))

  def write_then_fail(path, **arrays):
    with open(path, "wb") as f:
      f.write(b"half an npz")
    raise OSError(errno.ENOSPC, "No space left on device")

  monkeypatch.setattr(embed.np, "savez_compressed", write_then_fail)
  with pytest.raises(OSError, match="No space left"):
    embed.embed_descriptions(descriptions_lib.synthetic_descriptions(), Encoder(),
                             str(tmp_path / "text.npz"))
  assert not os.listdir(tmp_path)


def test_ensemble_out_is_a_file(tmp_path):
  rng = np.random.default_rng(0)
  run_dir = tmp_path / "joint"
  run_dir.mkdir()
  np.save(run_dir / "test_logits.npy", rng.normal(size=(6, 3)).astype(np.float32))
  np.save(run_dir / "test_labels.npy", np.arange(6) % 3)
  out = tmp_path / "report"
  out.write_text("")
  status, stderr = run("freqjax.evaluation.ensemble", f"--logits=joint={run_dir}/test_logits.npy",
                       "--out", out)
  assert_one_line(status, stderr, "freqjax.evaluation.ensemble", f"{out}: File exists")


def test_ensemble_logits_directory_in_process(tmp_path, capsys):
  assert ensemble.main([f"--logits=joint={tmp_path}"]) == 2
  assert capsys.readouterr().err == (
      f"python -m freqjax.evaluation.ensemble: error: {tmp_path}: a directory; the joint "
      "logits must be a .npy file\n")


def test_demo_data_with_a_binary_manifest(tmp_path):
  # The demo runs from a folder with configs/; its data exist, with an unreadable manifest.
  os.symlink(os.path.join(REPOSITORY, "configs"), tmp_path / "configs")
  data = tmp_path / "data" / "synthetic" / "xperformer_tilted"
  data.mkdir(parents=True)
  (data / "train_position.npy").write_bytes(b"")
  (data / "manifest.json").write_bytes(BINARY)
  status, stderr = run("freqjax.demo", "--workdir", tmp_path / "run", cwd=tmp_path)
  assert_one_line(status, stderr, "freqjax.demo",
                  f"{os.path.join('data', 'synthetic', 'xperformer_tilted', 'manifest.json')}: "
                  "the data in", "Delete data/synthetic/xperformer_tilted")
  assert not (tmp_path / "run").exists()


def test_prepare_missing_raw():
  status, stderr = run("freqjax.data.prepare", "ntu60", "--raw", "/no/such/raw", "--out",
                       "/no/such/out", "--quiet")
  assert_one_line(status, stderr, "freqjax.data.prepare", "/no/such/raw: not a directory")


def test_report_errors_in_process(monkeypatch, capsys):
  def main_raising(error):
    @cli.report_errors("prog")
    def main(argv=None):
      del argv
      raise error
    return main

  missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "a/b.npy")
  assert main_raising(missing)([]) == 2
  assert capsys.readouterr().err == "prog: error: a/b.npy: No such file or directory\n"
  moved = PermissionError(errno.EACCES, "Permission denied", "a.tmp", None, "a")
  assert main_raising(moved)(["--x"]) == 2
  assert capsys.readouterr().err == "prog: error: a.tmp -> a: Permission denied\n"
  assert main_raising(cli.UserError("fix this"))([]) == 2
  assert capsys.readouterr().err == "prog: error: fix this\n"
  with pytest.raises(cli.UserError):  # the flag, or the environment variable
    main_raising(cli.UserError("fix this"))(["--traceback"])
  monkeypatch.setenv("FREQJAX_TRACEBACK", "1")
  with pytest.raises(cli.UserError):
    main_raising(cli.UserError("fix this"))([])
  monkeypatch.delenv("FREQJAX_TRACEBACK")
  for bug in (KeyError("x"), ValueError("a bug"), OSError(errno.EIO, "I/O error")):
    with pytest.raises(type(bug)):
      main_raising(bug)([])
  assert capsys.readouterr().err == ""
