"""Several processes on one machine: `train.py` and fine-tuning on 2 processes × 4 CPU
devices (`jax.distributed`, Gloo collectives over 127.0.0.1) equal 1 process × 8 devices;
the launcher's variables; each process's slice of the global batch."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import types

import numpy as np
import orbax.checkpoint as ocp
import pytest

from freqjax import parallel
from freqjax.data import readers, synthetic
from freqjax.text import descriptions, embed
from freqjax.text import table as text_table
from helpers.fakes import FakeTextEncoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "helpers", "multihost_worker.py")
LAUNCH_TIMEOUT_S = 900  # compiling the MICA step on a loaded 2-core machine takes minutes
STEPS, SAVED = 4, ["2", "4"]  # 33 training samples, batch 8; checkpoints every 2 steps


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(record_dir, args, num_processes: int, devices_per_process: int) -> None:
  """Runs the worker as `num_processes` processes of `devices_per_process` CPU devices
  each; fails (killing them all, after a stack dump) on an error or a hang."""
  os.makedirs(record_dir, exist_ok=True)
  port = _free_port()
  processes, logs = [], []
  for process_id in range(num_processes):
    env = dict(os.environ, XLA_FLAGS=os.environ.get("XLA_FLAGS", "") +
               f" --xla_force_host_platform_device_count={devices_per_process}")
    for name in parallel.PLAIN_LAUNCHER_VARIABLES:
      env.pop(name, None)
    if num_processes > 1:
      env.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                 JAX_NUM_PROCESSES=str(num_processes), JAX_PROCESS_ID=str(process_id))
    log = open(os.path.join(record_dir, f"log_{process_id}.txt"), "w+", encoding="utf-8")
    logs.append(log)
    processes.append(subprocess.Popen([sys.executable, WORKER, str(record_dir), *args],
                                      cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
  deadline = time.monotonic() + LAUNCH_TIMEOUT_S
  try:
    while any(p.poll() is None for p in processes):
      # One failed process leaves the others waiting in a collective: stop at once.
      if time.monotonic() > deadline or any(p.poll() not in (None, 0) for p in processes):
        break
      time.sleep(0.5)
  finally:
    hung = [p for p in processes if p.poll() is None]
    for p in hung:
      p.send_signal(signal.SIGUSR1)  # the worker prints every thread's stack
    time.sleep(1.0 if hung else 0.0)
    for p in hung:
      p.kill()  # SIGTERM is caught by jax.distributed's preemption handling
      p.wait()
    outputs = []
    for log in logs:
      log.seek(0)
      outputs.append(log.read())
      log.close()
  if any(p.returncode != 0 for p in processes):
    tails = "\n".join(f"--- process {i} (status {p.returncode}):\n{out[-3000:]}"
                      for i, (p, out) in enumerate(zip(processes, outputs)))
    pytest.fail(f"{' '.join(args[:2])} on {num_processes} x {devices_per_process} devices "
                f"failed:\n{tails}")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
  """64 synthetic samples (33 in the training split, 16 frames) and their text."""
  root = tmp_path_factory.mktemp("synthetic")
  synthetic.write_dataset(str(root / "xperformer"), num_samples=64, seed=0, num_frames=16)
  embed.embed_synthetic(str(root / "text.npz"))
  assert len(readers.load_dataset("aimclr", str(root / "xperformer"), "train")) == 33
  return root


def _pretrain_args(tiny_data, workdir) -> list[str]:
  return ["pretrain", "--config", "configs/pretrain.py:test",
          f"--config.data.path={tiny_data / 'xperformer'}",
          f"--config.text.path={tiny_data / 'text.npz'}",
          "--config.model.dropout=0.0",  # dropout masks are drawn per device
          # shard_map: the backend whose first step waits for every process's compile
          # (Gloo gives a late process 30 s; see freqjax.parallel).
          "--config.parallel.backend=shard_map",
          "--config.monitor.knn_every_epochs=0", f"--workdir={workdir}"]


@pytest.fixture(scope="module")
def pretrained(tiny_data, tmp_path_factory):
  """`{"one": dir, "two": dir}`: train.py on 1 process × 8 and on 2 processes × 4."""
  runs = {}
  for name, processes, devices in (("one", 1, 8), ("two", 2, 4)):
    runs[name] = tmp_path_factory.mktemp(f"pretrain_{name}")
    _launch(runs[name], _pretrain_args(tiny_data, runs[name] / "run"), processes, devices)
  return runs


def _metrics(workdir) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl"), encoding="utf-8") as f:
    return [json.loads(line) for line in f]


def _final_state(workdir) -> dict:
  """`{path: array}` of the run's step-4 checkpoint, restored as saved."""
  mngr = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"),
                               item_names=("state", "meta"),
                               options=ocp.CheckpointManagerOptions(read_only=True))
  state = mngr.restore(STEPS, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
  flat = {}

  def visit(prefix, tree):
    if isinstance(tree, dict):
      for key, value in tree.items():
        visit(f"{prefix}/{key}", value)
    elif isinstance(tree, (list, tuple)):
      for i, value in enumerate(tree):
        visit(f"{prefix}/{i}", value)
    elif tree is not None:  # optax's empty states are saved as None
      flat[prefix] = np.asarray(tree)

  visit("", state)
  return flat


def _assert_same_run(reference: list[dict], other: list[dict]) -> None:
  """Per-step metrics equal within the device test's tolerance (test_train_step.py)."""
  assert [m["step"] for m in reference] == [m["step"] for m in other] == list(
      range(1, STEPS + 1))
  for a, b in zip(reference, other):
    for name in a:
      if name in ("step", "samples_per_second"):
        continue
      rtol = 5e-4 if name == "grad_norm" else 2e-5
      np.testing.assert_allclose(b[name], a[name], rtol=rtol, atol=1e-6,
                                 err_msg=f"step {a['step']} {name}")


def _assert_same_state(reference: dict, other: dict) -> None:
  assert reference.keys() == other.keys()
  for name, value in reference.items():
    np.testing.assert_allclose(other[name], value, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.slow
def test_two_processes_pretrain_as_one(pretrained):
  one, two = pretrained["one"] / "run", pretrained["two"] / "run"
  reference = _metrics(one)
  # Process 0 alone logs: each step once.
  _assert_same_run(reference, _metrics(two))
  assert reference[0]["loss"] != reference[-1]["loss"]  # the runs really trained
  _assert_same_state(_final_state(one), _final_state(two))
  # One checkpoint per step, written by process 0 only (Orbax's per-process files would
  # be named process_1).
  assert sorted(os.listdir(two / "checkpoints")) == SAVED
  written = [os.path.relpath(os.path.join(d, f), two / "checkpoints")
             for d, _, files in os.walk(two / "checkpoints") for f in files]
  assert written and not [f for f in written if "process_1" in f], written


@pytest.mark.slow
def test_each_process_reads_its_slice_of_every_global_batch(pretrained):
  whole = np.load(pretrained["one"] / "indices_0.npy")[:STEPS]  # (steps, 8)
  first = np.load(pretrained["two"] / "indices_0.npy")[:STEPS]  # (steps, 4)
  second = np.load(pretrained["two"] / "indices_1.npy")[:STEPS]
  np.testing.assert_array_equal(first, whole[:, :4])
  np.testing.assert_array_equal(second, whole[:, 4:])
  assert len(np.unique(whole)) == STEPS * 8  # one epoch: every row at most once


@pytest.mark.slow
def test_two_process_checkpoint_resumes_in_one_process(pretrained, tiny_data, tmp_path):
  """The 2-process run's step-2 checkpoint, resumed by 1 process × 8 devices, ends where
  the uninterrupted runs end."""
  workdir = tmp_path / "run"
  shutil.copytree(pretrained["two"] / "run", workdir)
  shutil.rmtree(workdir / "checkpoints" / "4")
  _launch(tmp_path, _pretrain_args(tiny_data, workdir), 1, 8)
  assert "Resuming" in (tmp_path / "log_0.txt").read_text(encoding="utf-8")
  resumed = np.load(tmp_path / "indices_0.npy")[:2]
  np.testing.assert_array_equal(resumed, np.load(pretrained["one"] / "indices_0.npy")[2:4])
  _assert_same_run(_metrics(pretrained["one"] / "run"), _metrics(workdir))
  _assert_same_state(_final_state(pretrained["one"] / "run"), _final_state(workdir))


@pytest.mark.slow
def test_two_processes_finetune_as_one(tmp_path):
  runs = {}
  for name, processes, devices in (("one", 1, 8), ("two", 2, 4)):
    _launch(tmp_path / name, ["finetune", "shard_map"], processes, devices)
    runs[name] = [json.loads((tmp_path / name / f"finetune_{p}.json").read_text())
                  for p in range(processes)]
  reference = runs["one"][0]
  assert reference["num_devices"] == 8
  for result in runs["two"]:  # every process ends with the same weights
    assert result["num_devices"] == 8
    for field in ("train_loss", "train_top1"):
      np.testing.assert_allclose(result["curve"][field], reference["curve"][field],
                                 rtol=2e-5, atol=1e-6, err_msg=field)
    assert reference["leaves"].keys() == result["leaves"].keys()
    for name, value in reference["leaves"].items():
      np.testing.assert_allclose(result["leaves"][name], value, rtol=1e-4, atol=1e-5,
                                 err_msg=name)
  assert reference["curve"]["train_loss"][0] != reference["curve"]["train_loss"][-1]
  whole = np.load(tmp_path / "one" / "indices_0.npy")[:4]  # 2 epochs of 2 steps, (4, 16)
  np.testing.assert_array_equal(np.load(tmp_path / "two" / "indices_0.npy")[:4], whole[:, :8])
  np.testing.assert_array_equal(np.load(tmp_path / "two" / "indices_1.npy")[:4], whole[:, 8:])


ADDRESS = {"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234"}


@pytest.mark.parametrize("env,expected", [
    ({}, {}),
    (dict(ADDRESS, JAX_NUM_PROCESSES="4", JAX_PROCESS_ID="3"),
     {"coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 3}),
    # SLURM, Open MPI, Cloud TPU: JAX detects the processes; an address set overrides its.
    ({"SLURM_NTASKS": "4"}, {}),
    (dict(ADDRESS, SLURM_NTASKS="4"), {"coordinator_address": "10.0.0.1:1234"}),
])
def test_launcher_variables(env, expected):
  assert parallel.distributed_arguments(env) == expected


@pytest.mark.parametrize("env,message", [
    (ADDRESS, "JAX_COORDINATOR_ADDRESS set but not JAX_NUM_PROCESSES, JAX_PROCESS_ID"),
    (dict(ADDRESS, JAX_NUM_PROCESSES="2"), "set but not JAX_PROCESS_ID"),
    ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}, "set but not JAX_COORDINATOR_ADDRESS"),
    (dict(ADDRESS, JAX_NUM_PROCESSES="2", JAX_PROCESS_ID="2"), "JAX_PROCESS_ID=2"),
    (dict(ADDRESS, JAX_NUM_PROCESSES="two", JAX_PROCESS_ID="0"), "JAX_NUM_PROCESSES=two"),
])
def test_incomplete_launcher_variables(env, message):
  with pytest.raises(parallel.LauncherError, match=message):
    parallel.distributed_arguments(env)
  assert parallel.wants_multiple_processes(env)


def test_train_py_with_only_the_coordinator_is_one_line(tmp_path):
  env = dict(os.environ, **ADDRESS)
  for name in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    env.pop(name, None)
  out = subprocess.run([sys.executable, "train.py", "--config", "configs/pretrain.py:test",
                        f"--workdir={tmp_path / 'run'}"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 2, out.stderr
  lines = out.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("train.py: error: JAX_COORDINATOR_ADDRESS "
                                                 "set but not JAX_NUM_PROCESSES"), lines
  assert not (tmp_path / "run").exists()


def _fake_device(process: int):
  return types.SimpleNamespace(process_index=process)


def test_data_axis_is_grouped_by_process():
  dp = parallel.DataParallel(devices=tuple(_fake_device(p) for p in (0, 0, 1, 1)))
  assert dp.process_slice == (0, 2) and dp.num_local_devices == 2
  for owners in ((1, 1, 0, 0), (0, 1, 0, 1), (0, 0, 0, 1)):
    with pytest.raises(ValueError, match="grouped by process"):
      parallel.DataParallel(devices=tuple(_fake_device(p) for p in owners))


def test_random_text_does_not_depend_on_the_host_slice(tmp_path):
  """A sample's sentence is drawn for its dataset row: the two halves of a global batch,
  read by two hosts, get the text the whole batch gets on one host."""
  path = str(tmp_path / "text.npz")
  embed.embed_descriptions(descriptions.class_descriptions(
      {c: [f"class {c} sentence {s}" for s in range(4)] for c in range(3)}),
      FakeTextEncoder(), path, dtype="float32")
  table = text_table.TextTable.load(path, sentences="random", seed=0)
  labels = np.arange(20) % 3
  extra_fn = table.extra_fn(labels)
  batch = np.random.default_rng(1).permutation(20)[:8]
  for step in range(5):
    whole = extra_fn(batch, step)
    halves = [extra_fn(half, step) for half in (batch[:4], batch[4:])]
    for name, value in whole.items():
      np.testing.assert_array_equal(np.concatenate([h[name] for h in halves]), value,
                                    err_msg=name)
