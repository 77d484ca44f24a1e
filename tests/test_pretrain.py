"""The pretraining loop: train.py end to end, kill-and-resume, learning, NaN guard, init_from."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from configs import pretrain as pretrain_configs
from freqjax.checkpoints import pytorch as convert
from freqjax.pretraining import loop as pretrain
from freqjax.data import readers, synthetic
from freqjax.text import embed
from helpers.pretrain_runs import read_metrics, tiny_config, tiny_data  # noqa: F401
from helpers.torch_stgcn import random_state_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_train_py_two_steps(tiny_data, tmp_path):
  workdir = tmp_path / "run"
  train_size = len(readers.load_dataset("aimclr", str(tiny_data / "xperformer"), "train"))
  epochs = 2 / (train_size // 8)  # exactly two steps of batch 8
  subprocess.run(
      [sys.executable, "train.py", "--config", "configs/pretrain.py:test",
       f"--config.data.path={tiny_data / 'xperformer'}",
       f"--config.text.path={tiny_data / 'text.npz'}", f"--config.optim.epochs={epochs}",
       f"--workdir={workdir}"], cwd=ROOT, check=True, timeout=600)
  metrics = read_metrics(workdir)
  with open(workdir / "config.json") as f:
    assert json.load(f)["optim"]["epochs"] == pytest.approx(epochs)
  assert [m["step"] for m in metrics] == [1, 2]
  assert os.listdir(workdir / "checkpoints") == ["2"]
  for name in ("loss", "loss/instance", "loss/fm", "loss/harmonizer", "accuracy", "lr",
               "grad_norm", "threshold/frest9/fres", "samples_per_second"):
    assert np.isfinite(metrics[-1][name]), name
  assert os.listdir(workdir / "tensorboard")
  # Drawn at each checkpoint from metrics.jsonl (freqjax.visualize.curves).
  assert os.path.getsize(workdir / "training_curves.png") > 0


@pytest.mark.slow
def test_twice_killed_run_equals_uninterrupted_at_default_xla_level(tiny_data, tmp_path):
  """Killed after steps 5 and 7 (checkpoints every 2), resumed each time: the final state
  equals an uninterrupted run's bit for bit and metrics.jsonl holds steps 1-8 once, in
  order. Runs in its own process at XLA's default optimisation level (not the suite's 0)."""
  flags = os.environ.get("XLA_FLAGS", "").split()
  env = dict(os.environ, XLA_FLAGS=" ".join(
      f for f in flags if not f.startswith("--xla_backend_optimization_level")))
  result = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "resume_worker.py"),
                           str(tiny_data), str(tmp_path)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert "optimization_level" not in out["xla_flags"]
  assert out["checkpoints_at_kills"] == [[2, 4], [2, 4, 6]]
  assert out["logged_steps"] == list(range(1, 9))
  assert out["final_step"] == out["straight_step"] == 8
  assert out["max_abs_difference"] == 0.0


@pytest.mark.slow
def test_nonfinite_loss_stops_with_the_step(tiny_data, tmp_path):
  config = tiny_config(tiny_data, optim__base_lr=1e12, optim__warmup_epochs=0.0)
  config.optim.schedule = "step"
  config.checkpoint_every_steps = 1
  with pytest.raises(pretrain.DivergedError, match=r"Non-finite loss at step (\d+)") as error:
    pretrain.pretrain(config, str(tmp_path))
  bad_step = int(error.value.args[0].split("step ")[1].split(";")[0])
  saved = [int(s) for s in os.listdir(tmp_path / "checkpoints")]
  # The NaN state is never saved: every checkpoint is from before the bad step.
  assert all(step < bad_step for step in saved)
  assert (f"last good checkpoint is step {max(saved)}" if saved else
          "No checkpoint was saved") in str(error.value)


def test_init_from_pytorch_checkpoint(tiny_data, tmp_path):
  state_dict = random_state_dict(seed=5)
  config = tiny_config(tiny_data)
  config.model.hidden_channels, config.model.hidden_dim = 16, 256  # SkeletonCLR's widths
  config.model.mlp_dim = 128
  path = tmp_path / "skeletonclr.npz"
  np.savez(path, **{f"encoder_q.{k}": v for k, v in state_dict.items()})
  config.init_from = str(path)
  dataset, extra_fn = pretrain.load_training_data(config)
  tx = pretrain.optim.sgd(config, 10)
  state = pretrain._initial_state(  # pylint: disable=protected-access
      config, pretrain.build_networks(config, None), tx, dataset, extra_fn, resuming=False)
  expected = convert.stgcn_from_pytorch(state_dict)
  np.testing.assert_array_equal(state.params["encoder"]["block5"]["gcn"]["kernel"],
                                expected["params"]["block5"]["gcn"]["kernel"])
  np.testing.assert_array_equal(state.key_params["encoder"]["block5"]["gcn"]["kernel"],
                                expected["params"]["block5"]["gcn"]["kernel"])
  np.testing.assert_array_equal(state.batch_stats["data_bn"]["var"],
                                state_dict["data_bn.running_var"])
  assert "frest9" in state.params["encoder"]  # FreST keeps its own initialisation
  config.model.hidden_dim = 128
  with pytest.raises(Exception, match="shape"):
    pretrain._initial_state(  # pylint: disable=protected-access
        config, pretrain.build_networks(config, None), tx, dataset, extra_fn, resuming=False)


@pytest.fixture(scope="module")
def larger_data(tmp_path_factory):
  """800 synthetic samples (~400 for training): many more than the test config's queue."""
  root = tmp_path_factory.mktemp("synthetic_800")
  synthetic.write_dataset(str(root / "xperformer"), num_samples=800, seed=0, num_frames=16)
  embed.embed_synthetic(str(root / "text.npz"))
  return root


@pytest.mark.slow
def test_pretraining_learns_against_an_untrained_control(larger_data, tmp_path):
  """Two epochs of MICA pretraining bring the instance loss below that of the same run
  with learning rate 0 (whose loss sits at chance, ln(queue + 1)).

  The dataset is ~12x the queue: with a dataset the size of the queue, the queue holds
  the positives' own older keys and the loss says little.
  """
  def run(base_lr, name):
    # Flax's init, as the demo: with the reference's N(0, 0.02) kernels these two epochs
    # did not learn (instance loss 3.495 vs the control's 3.481; README, "The demo").
    config = tiny_config(larger_data, optim__batch_size=16, optim__epochs=2.0,
                         optim__base_lr=base_lr, optim__warmup_epochs=0.0,
                         model__dropout=0.0, model__init="flax")
    config.checkpoint_every_steps = 1000
    pretrain.pretrain(config, str(tmp_path / name))
    # Leave out the first steps, while the queue still holds its random initial keys.
    return read_metrics(tmp_path / name)[8:]

  trained, control = run(2.0, "trained"), run(0.0, "control")
  assert len(trained) == len(control) >= 30
  mean = lambda metrics, name: float(np.mean([m[name] for m in metrics]))
  chance = np.log(pretrain_configs.get_config("test").moco.queue_size + 1)
  assert abs(mean(control, "loss/instance") - chance) < 0.1
  assert mean(trained, "loss/instance") < mean(control, "loss/instance") - 0.1
  assert mean(trained, "accuracy") > mean(control, "accuracy")


@pytest.mark.slow
def test_knn_monitor_logs_the_accuracy_of_the_saved_encoder(tiny_data, tmp_path):
  """The monitor's number is kNN of the query encoder at that step on its fixed slices."""
  from freqjax.evaluation import run as evaluate  # pylint: disable=import-outside-toplevel
  from freqjax.pretraining import monitor as knn_monitor  # pylint: disable=import-outside-toplevel
  from freqjax.evaluation import knn  # pylint: disable=import-outside-toplevel
  config = tiny_config(tiny_data, optim__epochs=2.0, monitor__knn_every_epochs=1.0,
                       monitor__knn_train_samples=40, monitor__knn_test_samples=30,
                       monitor__knn_k=5, optim__base_lr=1.0)
  config.log_every_steps = 3
  state = pretrain.pretrain(config, str(tmp_path / "run"))
  metrics = read_metrics(tmp_path / "run")
  train_size = len(readers.load_dataset("aimclr", config.data.path, "train"))
  steps_per_epoch = train_size // 8
  logged = [m for m in metrics if "monitor/knn_top1" in m]
  assert [m["step"] for m in logged] == [steps_per_epoch, 2 * steps_per_epoch]
  assert all("loss" in m for m in logged)  # one line per step, with the losses

  monitor = knn_monitor.KnnMonitor(config, pretrain.load_training_data(config)[0])
  assert len(monitor.bank) == 40 and len(monitor.queries) == 30
  encoder = pretrain.build_networks(config, None).encoder
  variables = {"params": state.params["encoder"], "batch_stats": state.batch_stats}
  embed = lambda d: evaluate.extract_features(encoder, variables, d, batch_size=16,
                                              stream="joint")
  (bank_x, bank_y), (query_x, query_y) = embed(monitor.bank), embed(monitor.queries)
  expected = knn.knn_evaluate(bank_x, bank_y, query_x, query_y, num_classes=14, k=5,
                              temperature=0.1)["test_top1"]
  assert logged[-1]["monitor/knn_top1"] == pytest.approx(expected)


def test_due_runs_periodic_actions_every_n_steps_and_at_the_end():
  due = pretrain.due
  assert [s for s in range(1, 11) if due(s, 4)] == [4, 8]
  assert [s for s in range(1, 11) if due(s, 4, total=10)] == [4, 8, 10]
  assert not any(due(s, 0) for s in range(1, 11))  # 0 = never (the kNN monitor off)
  assert [s for s in range(1, 11) if due(s, 0, total=10)] == [10]
