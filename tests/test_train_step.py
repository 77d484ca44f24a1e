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


def _run_worker(num_devices: int, backend: str, default_optimization: bool = False) -> dict:
  """The worker's JSON; at XLA's default backend optimisation level when asked, instead of
  the level 0 the suite compiles at (tests/conftest.py)."""
  env = dict(os.environ)
  if default_optimization:
    env["XLA_FLAGS"] = " ".join(flag for flag in env.get("XLA_FLAGS", "").split()
                                if not flag.startswith("--xla_backend_optimization_level"))
  out = subprocess.run([sys.executable, WORKER, str(num_devices), backend], check=True,
                       capture_output=True, text=True, timeout=900, env=env)
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def one_device():
  return _run_worker(1, "pmap")


@pytest.mark.slow
@pytest.mark.parametrize("backend,default_optimization", [("pmap", True), ("shard_map", False)])
def test_eight_devices_equal_one_device(one_device, backend, default_optimization):
  """N devices with global batch B == one device with batch B (losses, params, queues).

  The pmap run (the default backend) compiles at XLA's default optimisation level, as
  training does; the one-device reference at the suite's level 0. (Measured: 8 devices at
  the default level vs level 0 differ by < 3e-6 relative in every metric.)"""
  eight = _run_worker(8, backend, default_optimization)
  assert ("--xla_backend_optimization_level=0" in eight["xla_flags"]) != default_optimization
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


def _single_device_step(config, batch, steps=1, prepare=None):
  """`steps` real steps (`DataParallel` on one device) from a fresh state, first edited
  by `prepare(state) -> state` when given; returns (state before, state after, metrics)."""
  dp = parallel.DataParallel("pmap", devices=tuple(jax.devices()[:1]))
  tx = optim.sgd(config, steps_per_epoch=10)
  words = batch.get("word_features")
  init = jax.jit(functools.partial(train_state.create_train_state, config,
                                   train_state.build_networks(config, None), tx))
  state = init(jnp.asarray(batch["x"][:2]), None if words is None else jnp.asarray(words[:2]))
  if prepare is not None:
    state = prepare(state)
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


def _key_encoder_apart(state, scale=0.1):
  """The state with a key encoder that differs from the query encoder (θ_k ≠ θ_q)."""
  rng = np.random.default_rng(7)
  apart = jax.tree.map(
      lambda p: p + scale * (np.abs(np.asarray(p)).mean() + 0.01)
      * rng.normal(size=p.shape).astype(p.dtype), state.key_params)
  return state.replace(key_params=apart)


def _flat(tree):
  return {jax.tree_util.keystr(p): np.asarray(v)
          for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


@pytest.fixture(scope="module")
def apart_step():
  """One real step (one compile, shared by the tests below) from a key encoder apart from
  the query encoder, at lr > 0, with the queue pointer at its last slot. Augmentation is
  off, so the key view is the batch's `x_key` and the keys can be recomputed here."""
  config = pretrain.get_config("test")
  config.model.dropout = 0.0
  config.data.augment.enabled = False
  config.moco.momentum = 0.9
  config.optim.warmup_epochs = 0.0  # the first step trains at the peak rate
  batch = _batch(config)
  batch["x_key"] = np.random.default_rng(2).normal(size=batch["x"].shape).astype(np.float32)
  pointer = config.moco.queue_size - config.optim.batch_size
  prepare = lambda s: _key_encoder_apart(s).replace(queue_ptr=jnp.int32(pointer))
  before, after, metrics = _single_device_step(config, batch, prepare=prepare)
  return config, batch, pointer, before, after, metrics


def test_key_encoder_moves_to_the_ema_of_the_query_encoder(apart_step):
  """θ_k ← m·θ_k + (1 − m)·θ_q, with θ_q before this step's update, from θ_k ≠ θ_q at lr > 0:
  skipping the update, or averaging with the updated θ_q, fails."""
  config, _, _, before, after, metrics = apart_step
  m = config.moco.momentum
  assert metrics["lr"] == pytest.approx(config.optim.base_lr * config.optim.batch_size / 128)
  old_key, old_query, new_query = (_flat(before.key_params), _flat(before.params),
                                   _flat(after.params))
  new_key = _flat(after.key_params)
  assert new_key.keys() == old_key.keys()
  moved = [name for name in new_key
           if np.abs(new_query[name] - old_query[name]).max() > 1e-5]
  assert len(moved) > len(new_key) // 2  # the query encoder really trained
  assert max(np.abs(old_key[n] - old_query[n]).max() for n in old_key) > 1e-2
  for name, value in new_key.items():
    np.testing.assert_allclose(value, m * old_key[name] + (1 - m) * old_query[name],
                               rtol=1e-6, atol=1e-7, err_msg=name)


def test_queue_takes_this_steps_keys_at_the_pointer(apart_step):
  """The rows written are the keys of this step — the momentum-updated key encoder applied
  to the key view, computed here independently — at the pointer, in batch order; the rows
  before stay; the pointer advances (and wraps)."""
  config, batch, pointer, before, after, _ = apart_step
  nets = train_state.build_networks(config, None)
  m = config.moco.momentum
  key_params = jax.tree.map(lambda k, q: m * k + (1 - m) * q, before.key_params,
                            {"encoder": before.params["encoder"], "mlp": before.params["mlp"]})

  @jax.jit
  def encode(params, stats, x):
    (h, _), _ = nets.encoder.apply({"params": params["encoder"], "batch_stats": stats}, x,
                                   train=True, mutable=["batch_stats"])
    return nets.mlp.apply({"params": params["mlp"]}, h)

  def embed(params, stats, x):
    z = np.asarray(encode(params, stats, x), np.float64)
    return z / np.linalg.norm(z, axis=1, keepdims=True)

  keys = embed(key_params, before.key_batch_stats, batch["x_key"])
  queries = embed(before.params, before.batch_stats, batch["x"])
  assert np.abs(keys - queries).max() > 0.1  # the check can tell keys from queries
  np.testing.assert_allclose(after.queue[pointer:], keys, rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(after.queue[:pointer], before.queue[:pointer])
  assert int(after.queue_ptr) == 0 and int(after.step) == 1


def test_text_queue_and_loss_arithmetic(apart_step):
  config, batch, _, before, after, metrics = apart_step
  b = config.optim.batch_size
  assert int(after.text_queue_ptr) == b
  # The first B rows of the text queue were replaced by this batch's texts; the rest are
  # untouched.
  np.testing.assert_allclose(after.text_queue[:b], batch["text_embedding"], rtol=1e-6)
  np.testing.assert_array_equal(after.text_queue[b:], before.text_queue[b:])
  # The total is the weighted sum of the parts.
  np.testing.assert_allclose(
      metrics["loss"], metrics["loss/instance"] + config.fm.weight * metrics["loss/fm"]
      + config.harmonizer.weight * metrics["loss/harmonizer"], rtol=1e-5)
  assert metrics["nonfinite"] == 0


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
