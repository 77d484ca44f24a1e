"""The data-parallel pretraining step: equivalence over devices, EMA, queues, switches."""
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import pretrain
from freqjax import optim, parallel
from freqjax.pretraining import state as train_state
from freqjax.pretraining import step as train_step

WORKER = os.path.join(os.path.dirname(__file__), "parallel_worker.py")


def _run_worker(num_devices: int, backend: str) -> dict:
  out = subprocess.run([sys.executable, WORKER, str(num_devices), backend], check=True,
                       capture_output=True, text=True, timeout=900)
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def one_device():
  return _run_worker(1, "pmap")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["pmap", "shard_map"])
def test_eight_devices_equal_one_device(one_device, backend):
  """N devices with global batch B == one device with batch B (losses, params, queues)."""
  eight = _run_worker(8, backend)
  for a, b in zip(one_device["metrics"], eight["metrics"]):
    assert a.keys() == b.keys()
    for name in a:
      # A different float32 summation order moves a few ReLU activations across zero and
      # the gradient with them (see test_stgcn's float64 gradient test): two correct
      # orders of the arithmetic differ by ~7e-5 in the gradient norm on one device.
      rtol = 5e-4 if name == "grad_norm" else 2e-5
      np.testing.assert_allclose(b[name], a[name], rtol=rtol, atol=1e-6, err_msg=name)
  assert eight["queue_ptr"] == one_device["queue_ptr"] == 24
  assert one_device["leaves"].keys() == eight["leaves"].keys()
  for name, value in one_device["leaves"].items():
    np.testing.assert_allclose(eight["leaves"][name], value, rtol=1e-4, atol=1e-5,
                               err_msg=name)
  # Several steps really trained (the check compares moving numbers).
  assert one_device["metrics"][0]["loss"] != one_device["metrics"][-1]["loss"]


def _single_device_step(config, batch, steps=1):
  dp = parallel.DataParallel("pmap", devices=tuple(jax.devices()[:1]))
  tx = optim.sgd(config, steps_per_epoch=10)
  words = batch.get("word_features")
  init = jax.jit(functools.partial(train_state.create_train_state, config,
                                   train_state.build_networks(config, None), tx))
  state = init(jnp.asarray(batch["x"][:2]), None if words is None else jnp.asarray(words[:2]))
  fn = dp.compile(functools.partial(
      train_step.train_step, nets=train_state.build_networks(config, parallel.AXIS), tx=tx,
      schedule=optim.learning_rate(config, 10), config=config), donate_state=False)
  before = jax.device_get(state)
  placed = dp.put_state(state)
  for _ in range(steps):
    placed, metrics = fn(placed, dp.put_batch({k: v[None] for k, v in batch.items()}))
  return before, jax.device_get(dp.get_state(placed)), jax.device_get(metrics)


def _batch(config, text=True):
  rng = np.random.default_rng(1)
  b = config.optim.batch_size
  batch = {"x": rng.normal(size=(b, 3, config.data.num_frames, 25, 2)).astype(np.float32)}
  if text:
    z = rng.normal(size=(b, config.fm.dim)).astype(np.float32)
    batch |= {"text_embedding": z / np.linalg.norm(z, axis=1, keepdims=True),
              "word_features": rng.normal(size=(b, 4, 32)).astype(np.float32),
              "word_mask": np.ones((b, 4), bool)}
  return batch


def test_ema_queue_and_step_arithmetic():
  config = pretrain.get_config("test")
  config.moco.momentum = 0.9
  batch = _batch(config)
  before, after, metrics = _single_device_step(config, batch)
  m = 0.9
  for path, key_leaf in jax.tree_util.tree_flatten_with_path(after.key_params)[0]:
    old_key = functools.reduce(lambda t, k: t[k.key], path, before.key_params)
    old_query = functools.reduce(lambda t, k: t[k.key], path, before.params)
    np.testing.assert_allclose(key_leaf, m * old_key + (1 - m) * old_query, rtol=1e-5,
                               atol=1e-7)
  b = config.optim.batch_size
  assert int(after.step) == 1 and int(after.queue_ptr) == b and int(after.text_queue_ptr) == b
  # The first B rows of the queues were replaced by this batch's keys and texts; the rest
  # are untouched.
  np.testing.assert_array_equal(after.queue[b:], before.queue[b:])
  np.testing.assert_allclose(np.linalg.norm(after.queue[:b], axis=1), 1.0, rtol=1e-5)
  assert np.abs(after.queue[:b] - before.queue[:b]).max() > 0.1
  np.testing.assert_allclose(after.text_queue[:b], batch["text_embedding"], rtol=1e-6)
  np.testing.assert_array_equal(after.text_queue[b:], before.text_queue[b:])
  # The query encoder moved; the total is the weighted sum of the parts.
  np.testing.assert_allclose(
      metrics["loss"], metrics["loss/instance"] + config.fm.weight * metrics["loss/fm"]
      + config.harmonizer.weight * metrics["loss/harmonizer"], rtol=1e-5)
  assert metrics["nonfinite"] == 0 and metrics["lr"] == pytest.approx(0.0)  # warm-up at 0


def test_zero_weights_remove_the_text_branches():
  config = pretrain.get_config("test")
  config.fm.weight = 0.0
  config.harmonizer.weight = 0.0
  _, after, metrics = _single_device_step(config, _batch(config, text=False))
  assert set(after.params) == {"encoder", "mlp"}
  assert "loss/fm" not in metrics and "loss/harmonizer" not in metrics
  np.testing.assert_allclose(metrics["loss"], metrics["loss/instance"])


def test_bad_batch_layouts_fail_before_compiling():
  config = pretrain.get_config("test")
  config.optim.batch_size = 12
  with pytest.raises(ValueError, match="moco.queue_size 32 is not a multiple of "
                                       "optim.batch_size 12"):
    train_step.check_batch_layout(config, num_devices=1)
  with pytest.raises(ValueError, match="not divisible by the 8 devices"):
    train_step.check_batch_layout(config, num_devices=8)
  config.optim.batch_size = 8
  config.fm.text_queue_size = 20
  with pytest.raises(ValueError, match="fm.text_queue_size 20"):
    train_step.check_batch_layout(config, num_devices=2)
