"""A resumed run is the run that was started; a damaged checkpoint is not a dead end;
the NaN guard stops on a non-finite gradient and leaves a good checkpoint."""
import json
import logging
import os
import shutil
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from freqjax.checkpoints import store as checkpoint
from freqjax.data import readers
from freqjax.losses import moco
from freqjax.models import STGCN
from freqjax.pretraining import loop, metric_writer, resume
from helpers.pretrain_runs import read_metrics, tiny_config, tiny_data  # noqa: F401

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def four_step_config(tiny_data):
  """4 steps of batch 8, checkpoints at 2 and 4, the step schedule (whose learning rate
  does not depend on the run's length, so more epochs extend the run)."""
  config = tiny_config(tiny_data, optim__schedule="step")
  train_size = len(readers.load_dataset("aimclr", config.data.path, "train"))
  config.optim.epochs = 4 / (train_size // config.optim.batch_size)
  return config


@pytest.fixture(scope="module")
def finished_run(tiny_data, tmp_path_factory):
  """A finished 4-step run; tests work on copies (`copy_run`)."""
  config = four_step_config(tiny_data)
  workdir = tmp_path_factory.mktemp("finished") / "run"
  state = jax.device_get(loop.pretrain(config, str(workdir)))
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
  return {"workdir": workdir, "config": config, "state": state}


def copy_run(finished_run, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(finished_run["workdir"], workdir)
  return workdir


def damage(step_dir, how: str) -> None:
  """Deletes `state/_METADATA` or truncates `state/manifest.ocdbt` of one checkpoint."""
  if how == "delete":
    os.remove(step_dir / "state" / "_METADATA")
  else:
    path = step_dir / "state" / "manifest.ocdbt"
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)


def restore_state(workdir, step: int) -> dict:
  """The train state of one checkpoint, as saved (nested dicts of arrays)."""
  mngr = ocp.CheckpointManager(str(workdir / "checkpoints"), item_names=("state", "meta"))
  return mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state


def read_bytes(path):
  with open(path, "rb") as f:
    return f.read()


def test_changed_fields_refuse_before_anything_is_written(tiny_data, tmp_path):
  saved = tiny_config(tiny_data)
  workdir = tmp_path / "run"
  os.makedirs(workdir / "checkpoints" / "4")  # a run with a checkpoint: a resume
  resume.write_config(saved, str(workdir), 0)
  before = read_bytes(workdir / "config.json")

  changed = tiny_config(tiny_data)
  changed.data.stream, changed.optim.base_lr = "motion", 5.0
  changed.log_every_steps, changed.monitor.knn_every_epochs = 7, 0.0  # safe: not named
  with pytest.raises(resume.ResumeConfigError) as error:
    loop.pretrain(changed, str(workdir))
  message = str(error.value)
  assert "\n" not in message
  assert "data.stream: saved 'joint', now 'motion'" in message
  assert "optim.base_lr: saved 0.1, now 5.0" in message
  assert "log_every_steps" not in message and "monitor" not in message
  assert "--allow_config_change" in message
  assert read_bytes(workdir / "config.json") == before
  assert sorted(os.listdir(workdir)) == ["checkpoints", "config.json"]

  # Only safe fields changed: no refusal.
  safe = tiny_config(tiny_data)
  safe.log_every_steps, safe.keep_checkpoints, safe.data.prefetch = 7, 9, 4
  resume.check_config(safe, str(workdir), resuming=True, allow_change=False)
  resume.check_config(changed, str(workdir), resuming=True, allow_change=True)
  # No checkpoint: nothing to resume, nothing to protect.
  resume.check_config(changed, str(workdir), resuming=False, allow_change=False)


def test_one_comparison_names_every_differing_field_with_both_values():
  saved = {"seed": 1, "optim": {"decay_epochs": [80], "schedule": "step"}, "gone": None,
           "log_every_steps": 10}
  wanted = {"seed": 1.0, "optim": {"decay_epochs": [90], "schedule": "step"}, "new": None,
            "log_every_steps": 20}
  changes = resume.compare_configs(resume.flatten(saved), resume.flatten(wanted),
                                   ignore=lambda field: field == "log_every_steps")
  # 1 == 1.0 (JSON numbers); a field on one side only differs, even from None.
  assert changes.fields == {"gone": (None, resume.ABSENT), "new": (resume.ABSENT, None),
                            "optim.decay_epochs": ([80], [90])}
  assert changes.describe() == ("gone: saved None, now (absent); new: saved (absent), now "
                                "None; optim.decay_epochs: saved [80], now [90]")
  assert changes.describe(limit=1) == "gone: saved None, now (absent) (+2 more)"
  assert "log_every_steps" in resume.compare_configs(resume.flatten(saved),
                                                     resume.flatten(wanted)).fields
  assert not resume.compare_configs(resume.flatten(saved), resume.flatten(saved))


def test_more_epochs_extend_a_step_schedule_but_not_a_cosine_one(tiny_data, tmp_path):
  for schedule, refused in (("step", False), ("cosine", True)):
    workdir = tmp_path / schedule
    os.makedirs(workdir)
    saved = tiny_config(tiny_data, optim__schedule=schedule)
    resume.write_config(saved, str(workdir), 0)
    longer = tiny_config(tiny_data, optim__schedule=schedule, optim__epochs=3.0)
    if refused:
      with pytest.raises(resume.ResumeConfigError,
                         match=r"optim.epochs: saved 1.0, now 3.0 \(optim.epochs with the cosine"):
        resume.check_config(longer, str(workdir), resuming=True, allow_change=False)
    else:
      resume.check_config(longer, str(workdir), resuming=True, allow_change=False)


def test_config_is_replaced_atomically_and_the_old_record_kept(tiny_data, tmp_path,
                                                               monkeypatch):
  workdir = tmp_path / "run"
  os.makedirs(workdir)
  resume.write_config(tiny_config(tiny_data), str(workdir), 0)
  before = read_bytes(workdir / "config.json")

  def fail(*args):
    raise OSError(28, "No space left on device")

  monkeypatch.setattr(resume.os, "replace", fail)
  with pytest.raises(OSError):
    resume.write_config(tiny_config(tiny_data, optim__base_lr=5.0), str(workdir), 6)
  assert read_bytes(workdir / "config.json") == before
  assert sorted(os.listdir(workdir)) == ["config.json"]  # no temporary file left
  monkeypatch.undo()
  resume.write_config(tiny_config(tiny_data, optim__base_lr=5.0), str(workdir), 6)
  assert read_bytes(workdir / "config.before_step_6.json") == before
  with open(workdir / "config.json") as f:
    assert json.load(f)["optim"]["base_lr"] == 5.0


@pytest.mark.slow
def test_allowed_change_is_recorded_and_a_failing_restore_keeps_the_config(
    finished_run, tmp_path):
  workdir = copy_run(finished_run, tmp_path)
  before = read_bytes(workdir / "config.json")
  changed = finished_run["config"].copy_and_resolve_references()
  changed.optim.base_lr = 0.05
  for step in ("2", "4"):
    damage(workdir / "checkpoints" / step, "delete")
  with pytest.raises(checkpoint.CheckpointError) as error:
    loop.pretrain(changed, str(workdir), allow_config_change=True)
  message = str(error.value)
  assert "\n" not in message and "step 4: " in message and "step 2: " in message
  assert f"delete {workdir / 'checkpoints'}" in message
  assert read_bytes(workdir / "config.json") == before
  assert not [n for n in os.listdir(workdir) if n.startswith("config.before")]

  workdir = copy_run(finished_run, tmp_path / "intact")
  loop.pretrain(changed, str(workdir), allow_config_change=True)  # finished: no step
  assert read_bytes(workdir / "config.before_step_4.json") == before
  with open(workdir / "config.json") as f:
    assert json.load(f)["optim"]["base_lr"] == 0.05


@pytest.mark.slow
@pytest.mark.parametrize("how", ["delete", "truncate"])
def test_resume_falls_back_from_a_damaged_latest_checkpoint(finished_run, tmp_path, how,
                                                            caplog):
  workdir = copy_run(finished_run, tmp_path)
  damage(workdir / "checkpoints" / "4", how)
  with caplog.at_level(logging.WARNING):
    state = jax.device_get(loop.pretrain(finished_run["config"], str(workdir)))
  warning = caplog.text
  assert f"{workdir / 'checkpoints' / '4'} (" in warning
  assert "resuming from step 2" in warning and str(workdir / "damaged_checkpoints") in warning
  assert sorted(os.listdir(workdir / "damaged_checkpoints")) == ["4"]
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]  # step 4 saved again
  assert [m["step"] for m in read_metrics(workdir)] == [1, 2, 3, 4]
  for a, b in zip(jax.tree.leaves(finished_run["state"]), jax.tree.leaves(state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
@pytest.mark.parametrize("how", ["delete", "truncate"])
def test_eval_falls_back_from_a_damaged_latest_checkpoint(finished_run, tmp_path, how,
                                                          caplog):
  workdir = copy_run(finished_run, tmp_path)
  damage(workdir / "checkpoints" / "4", how)
  encoder = STGCN(frest_blocks=(9,))  # only a PyTorch file would use it
  with caplog.at_level(logging.WARNING):
    variables, step, where = checkpoint.load_encoder_variables(str(workdir), encoder)
  assert step == 2 and "step 2" in where
  assert f"{workdir / 'checkpoints' / '4'} (" in caplog.text and "Delete" in caplog.text
  expected = restore_state(finished_run["workdir"], 2)
  jax.tree.map(np.testing.assert_array_equal, variables,
               {"params": expected["params"]["encoder"], "batch_stats": expected["batch_stats"]})
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]  # eval only reads

  damage(workdir / "checkpoints" / "2", how)
  with pytest.raises(checkpoint.CheckpointError, match="no checkpoint can be restored"):
    checkpoint.load_encoder_variables(str(workdir), encoder)


@pytest.mark.slow
def test_cli_refuses_another_stream_on_a_finished_run(finished_run, tmp_path):
  workdir = copy_run(finished_run, tmp_path)
  before = read_bytes(workdir / "config.json")
  c = finished_run["config"]
  result = subprocess.run(
      [sys.executable, "train.py", "--config", "configs/pretrain.py:test",
       f"--config.data.path={c.data.path}", f"--config.text.path={c.text.path}",
       f"--config.optim.epochs={c.optim.epochs!r}", "--config.optim.schedule=step",
       "--config.data.stream=bone", f"--workdir={workdir}"],
      cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert result.returncode == 2, result.stderr
  assert result.stderr.count("\n") == 1, result.stderr
  assert result.stderr.startswith(f"train.py: error: {workdir / 'config.json'}: ")
  assert "data.stream: saved 'joint', now 'bone'" in result.stderr
  assert "optim.epochs" not in result.stderr  # the same float through the flag
  assert read_bytes(workdir / "config.json") == before


@pytest.mark.slow
def test_nonfinite_gradient_with_finite_loss_stops_and_the_last_checkpoint_resumes(
    finished_run, tmp_path, monkeypatch):
  """A gradient made NaN under a finite loss stops the extended run at its first step;
  the last checkpoint (step 4) restores finite and a clean resume carries on from it."""
  workdir = copy_run(finished_run, tmp_path)
  longer = finished_run["config"].copy_and_resolve_references()
  longer.optim.epochs *= 2  # 8 steps: safe with the step schedule

  @jax.custom_vjp
  def nan_gradient(x):
    return x

  nan_gradient.defvjp(lambda x: (x, None), lambda _, g: (g * jnp.nan,))
  info_nce = moco.info_nce
  monkeypatch.setattr(moco, "info_nce",
                      lambda *args: (lambda loss, logits: (nan_gradient(loss), logits))(
                          *info_nce(*args)))
  with pytest.raises(loop.DivergedError) as error:
    loop.pretrain(longer, str(workdir))
  message = str(error.value)
  assert message.startswith("Non-finite gradient (norm nan, loss finite) at step 5;"), message
  assert "The last good checkpoint is step 4" in message
  assert sorted(os.listdir(workdir / "checkpoints")) == ["2", "4"]
  assert [m["step"] for m in read_metrics(workdir)] == [1, 2, 3, 4]  # the NaN step unlogged

  monkeypatch.undo()
  saved = restore_state(workdir, 4)
  assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(saved))
  state = jax.device_get(loop.pretrain(longer, str(workdir)))
  assert int(state.step) == 8
  assert all(np.isfinite(np.asarray(leaf)).all() for leaf in jax.tree.leaves(state))
  assert [m["step"] for m in read_metrics(workdir)] == list(range(1, 9))


def test_metrics_after_the_restored_step_and_torn_lines_are_dropped(tmp_path):
  path = tmp_path / "metrics.jsonl"
  lines = [json.dumps({"step": s, "loss": 1.0}) + "\n" for s in (1, 2, 3, 4, 5)]
  path.write_text("".join(lines) + '{"step": 6, "lo')  # killed mid-line
  assert metric_writer.drop_lines_after(str(path), 4) == 2
  assert path.read_text() == "".join(lines[:4])
  assert metric_writer.drop_lines_after(str(path), 4) == 0
  assert sorted(os.listdir(tmp_path)) == ["metrics.jsonl"]
