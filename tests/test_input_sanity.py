"""Inputs that would fail deep inside JAX, or train on nonsense, are named up front; and
train.py / eval.py print a user's mistake as one line (exit status 2)."""
import logging
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from freqjax.data import readers
from freqjax.pretraining import loop
from freqjax.text import embed
from freqjax.text import table as text_table
from helpers.pretrain_runs import tiny_config, tiny_data  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("field", ["text_embedding", "word_features"])
def test_nonfinite_text_embeddings_name_the_file_and_row(tmp_path, field):
  good = tmp_path / "text.npz"
  embed.embed_synthetic(str(good))
  with np.load(good) as f:
    content = {name: f[name] for name in f.files}
  offsets = content["offsets"]
  row = int(offsets[3]) + 1 if offsets[4] - offsets[3] > 1 else int(offsets[3])
  content[field] = content[field].copy()
  content[field][row].flat[2] = np.nan
  bad = tmp_path / "nan.npz"
  np.savez(bad, **content)
  with pytest.raises(text_table.TextTableError,
                     match=rf"^{bad}: {field} row {row} \(key {content['keys'][3]}\) holds NaN"):
    text_table.TextTable.load(str(bad))
  text_table.TextTable.load(str(good))


@pytest.mark.parametrize("field", ["moco.queue_size", "fm.text_queue_size"])
@pytest.mark.parametrize("size", [0, 4])
def test_queues_smaller_than_the_batch_are_config_errors_before_jax(tiny_data, tmp_path,
                                                                    field, size):
  config = tiny_config(tiny_data)  # global batch 8
  section, name = field.split(".")
  config[section][name] = size
  with pytest.raises(loop.ConfigError, match=rf"^{field} {size} is not a multiple of "
                                             r"optim.batch_size 8 of at least one batch"):
    loop.pretrain(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def write_aimclr_split(directory, x):
  os.makedirs(directory)
  np.save(directory / "train_position.npy", x.astype(np.float32))
  with open(directory / "train_label.pkl", "wb") as f:
    pickle.dump(([f"s{i}" for i in range(len(x))], list(np.arange(len(x)) % 3)), f)


def test_a_split_of_mostly_empty_or_absurd_samples_gets_a_warning(tiny_data, tmp_path,
                                                                  caplog):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 3, 16, 25, 2)).astype(np.float32)
  write_aimclr_split(tmp_path / "fine", x)
  zeros = x.copy()
  zeros[:210] = 0  # 70 %
  write_aimclr_split(tmp_path / "zeros", zeros)
  millimetres = x.copy()
  millimetres[::10] *= 5000  # every tenth sample: |x| far above 1000
  write_aimclr_split(tmp_path / "millimetres", millimetres)

  def warnings(name, num_samples=256):
    dataset = readers.load_dataset("aimclr", str(tmp_path / name), "train")
    return readers.implausible_data(dataset, num_samples=num_samples, seed=0)

  assert warnings("fine") == []
  (zero_warning,) = warnings("zeros")
  path = tmp_path / "zeros" / "train_position.npy"
  fraction = round(100 * np.mean(np.sort(np.random.default_rng(0).choice(300, 256, False))
                                 < 210))
  assert zero_warning.startswith(
      f"{path}: {fraction}% of 256 randomly chosen samples are all zeros")
  (absurd_warning,) = warnings("millimetres", num_samples=1000)  # all 300 checked
  assert absurd_warning.startswith(
      f"{tmp_path / 'millimetres' / 'train_position.npy'}: 10% of all 300 samples have "
      "coordinates beyond +-1000")

  config = tiny_config(tiny_data, fm__weight=0.0, harmonizer__weight=0.0)
  config.data.path = str(tmp_path / "zeros")
  with caplog.at_level(logging.WARNING):
    loop.load_training_data(config)
  assert zero_warning in caplog.text


def run_cli(script, *args):
  result = subprocess.run([sys.executable, script, *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
  return result.returncode, result.stderr


def assert_one_line(status, stderr, prog, *parts):
  assert status == 2, stderr
  assert stderr.count("\n") == 1 and stderr.startswith(f"{prog}: error: "), stderr
  for part in parts:
    assert part in stderr, (part, stderr)


def test_train_py_errors_are_one_line_and_traceback_shows_them(tiny_data, tmp_path):
  common = ["--config=configs/pretrain.py:test", f"--workdir={tmp_path / 'run'}",
            f"--config.data.path={tiny_data / 'xperformer'}",
            f"--config.text.path={tiny_data / 'text.npz'}"]
  status, stderr = run_cli("train.py", *common, "--config.moco.queue_size=0")
  assert_one_line(status, stderr, "train.py", "moco.queue_size 0 is not a multiple")
  status, stderr = run_cli("train.py", *common, "--config.moco.queue_size=0", "--traceback")
  assert status == 1 and "Traceback (most recent call last)" in stderr
  assert stderr.rstrip().splitlines()[-1].startswith(
      "freqjax.pretraining.loop.ConfigError: moco.queue_size 0")
  status, stderr = run_cli("train.py", *common, "--config.optim.bach_size=4")
  assert_one_line(status, stderr, "train.py", "--config.optim.bach_size: the config has no "
                  "field 'bach_size'")
  status, stderr = run_cli("train.py", "--config=configs/pretrain.py:test")
  assert_one_line(status, stderr, "train.py", "--workdir")
  assert not os.path.exists(tmp_path / "run")


def test_eval_py_errors_are_one_line(tmp_path):
  status, stderr = run_cli("eval.py", f"--workdir={tmp_path / 'none'}")
  assert_one_line(status, stderr, "eval.py", f"{tmp_path / 'none'} (--workdir): no such")
  status, stderr = run_cli("eval.py", "--config=configs/eval.py:lineer", f"--workdir={tmp_path}")
  assert_one_line(status, stderr, "eval.py", "Unknown evaluation config 'lineer'")
