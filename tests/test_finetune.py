"""Data-parallel fine-tuning: 8 devices == 1 device, PyTorch SGD arithmetic, it learns."""
import dataclasses
import functools
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn

from configs import eval as eval_configs
from freqjax import optim, parallel
from freqjax.evaluation import run as evaluate
from freqjax.data import readers, streams, synthetic
from freqjax.evaluation import finetune, records
from freqjax.models import STGCN
from freqjax.models.batch_norm import BatchNorm
from freqjax.models.heads import LinearClassifier
from helpers.array_dataset import ArrayDataset

WORKER = os.path.join(os.path.dirname(__file__), "finetune_worker.py")


@pytest.fixture(scope="module")
def worker():
  """1 device, 8 devices (pmap, shard_map): 4 steps each, in one 8-fake-device process."""
  out = subprocess.run([sys.executable, WORKER], check=True, capture_output=True, text=True,
                       timeout=900)
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["pmap", "shard_map"])
def test_eight_devices_equal_one_device(worker, backend):
  """Global batch 16 on 8 devices == on 1 device: losses, accuracies, params, BN stats.

  Augmentation is on and the stream is `bone`, so this fails when the augmentation keys
  follow the per-device row (0.07 apart) or BatchNorm is not synchronised (0.2 apart).
  """
  one, eight = worker["one"], worker[backend]
  assert one["num_devices"] == 1 and eight["num_devices"] == 8
  assert one["num_steps"] == eight["num_steps"] == 4
  # The result is one copy on one device, ready for the single-device test pass.
  assert len(eight["placement"]) == 1
  for name in ("train_loss", "train_top1"):
    np.testing.assert_allclose(eight["curve"][name], one["curve"][name], rtol=1e-5,
                               err_msg=name)
  np.testing.assert_allclose(one["curve"]["lr"], [0.1, 0.01])
  assert abs(one["curve"]["train_loss"][1] - one["curve"]["train_loss"][0]) > 1e-3  # it moved
  assert one["leaves"].keys() == eight["leaves"].keys()
  assert any("batch_stats" in name for name in one["leaves"])
  for name, value in one["leaves"].items():
    np.testing.assert_allclose(eight["leaves"][name], value, rtol=1e-4, atol=1e-5,
                               err_msg=name)


@pytest.mark.slow
def test_batch_size_not_divisible_by_the_devices_is_a_clear_error(worker):
  assert worker["indivisible_error"] == (
      "finetune.batch_size 12 is not divisible by the 8 devices; use a multiple of 8 "
      "(e.g. --config.finetune.batch_size=8).")


def test_global_batch_size():
  assert finetune.global_batch_size(128, 40_000, 8) == 128
  # A label subset smaller than the batch: the largest multiple of the device count.
  assert finetune.global_batch_size(128, 50, 8) == 48
  assert finetune.global_batch_size(128, 50, 1) == 50
  with pytest.raises(ValueError, match="batch_size 12 is not divisible by the 8 devices"):
    finetune.global_batch_size(12, 1000, 8)
  with pytest.raises(ValueError, match="5 labelled samples cannot fill"):
    finetune.global_batch_size(8, 5, 8)


def _config(**fields):
  config = eval_configs.get_config("finetune").finetune
  for name, value in fields.items():
    config[name] = value
  return config


class TinyEncoder(nn.Module):
  """A stand-in for the ST-GCN (the step only needs its interface): the project's
  BatchNorm over the device axis, a linear map, ReLU, dropout (in training mode), mean
  over frames, joints, persons."""
  hidden_dim: int = 16
  bn_axis_name: str | None = None
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train):
    x = jnp.transpose(x, (0, 2, 3, 4, 1))  # (N, T, V, M, xyz)
    x = BatchNorm(axis_name=self.bn_axis_name)(x, train)
    x = nn.relu(nn.Dense(self.hidden_dim)(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return jnp.mean(x, axis=(1, 2, 3)), x


def test_step_is_pytorch_sgd_on_the_cross_entropy():
  """One compiled step from a mid-run state == `p -= lr_epoch·(m·v + g + wd·p)` by hand.

  The gradient and BatchNorm statistics of the reference come from a plain forward without
  a device axis; the state is in the second epoch (decayed lr) with a non-zero momentum
  buffer.
  """
  rng = np.random.default_rng(0)
  encoder, head = TinyEncoder(), LinearClassifier(3)
  x = rng.normal(size=(6, 3, 8, 25, 2)).astype(np.float32)
  labels = rng.integers(0, 3, 6).astype(np.int32)
  variables = jax.jit(functools.partial(encoder.init, train=False))(jax.random.PRNGKey(0),
                                                                   x[:2])
  config = _config(epochs=3, decay_epochs=(1,), decay_factor=0.5, learning_rate=0.2,
                   momentum=0.9, weight_decay=0.01)
  config.augment.enabled = False
  tx = optim.pytorch_sgd(config.momentum, config.nesterov, config.weight_decay)
  state = jax.jit(functools.partial(finetune.create_state, head=head, feature_dim=16, tx=tx,
                                    seed=0))(variables)
  velocity = jax.tree.map(lambda p: rng.normal(size=p.shape).astype(np.float32),
                          state.params)
  state = state.replace(step=jnp.int32(5), opt_state=(optax.EmptyState(),
                                                      optax.TraceState(trace=velocity)))
  dp = parallel.DataParallel("pmap", devices=tuple(jax.devices()[:1]))
  step = dp.compile(functools.partial(
      finetune.finetune_step, encoder=encoder.clone(bn_axis_name=parallel.AXIS), head=head,
      tx=tx, epoch_lrs=finetune.learning_rates(config), steps_per_epoch=4, stream="motion",
      augmentation=config.augment, encoder_mode="train"), donate_state=False)
  new, metrics = step(dp.put_state(state), dp.put_batch({"x": x[None], "label": labels[None]}))
  new, metrics = jax.device_get((dp.get_state(new), metrics))

  def loss_fn(params):
    (h, _), stats = encoder.apply(
        {"params": params["encoder"], "batch_stats": variables["batch_stats"]},
        streams.to_stream(jnp.asarray(x), "motion"), train=True, mutable=["batch_stats"])
    logits = head.apply({"params": params["fc"]}, h)
    log_p = jax.nn.log_softmax(logits)
    return -jnp.mean(log_p[np.arange(6), labels]), (logits, stats["batch_stats"])

  (loss, (logits, stats)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(
      state.params)
  lr = 0.2 * 0.5  # step 5 of 4 per epoch: 0-based epoch 1, after the decay
  expected = jax.tree.map(lambda p, v, g: p - lr * (0.9 * v + g + 0.01 * p),
                          state.params, velocity, grads)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
               new.params, jax.device_get(expected))
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
               new.batch_stats, jax.device_get(stats))
  # The running statistics moved (the comparison is not between two initial values).
  assert np.abs(new.batch_stats["BatchNorm_0"]["var"] - 1).max() > 1e-3
  assert int(new.step) == 6
  np.testing.assert_allclose(metrics["loss"], [loss], rtol=1e-5)
  np.testing.assert_allclose(metrics["accuracy"],
                             [100 * np.mean(np.argmax(logits, -1) == labels)])


def test_eval_mode_step_keeps_running_statistics_and_drops_nothing():
  """`encoder_mode="eval"` (the reference's): the forward is the inference-mode one, written
  out in numpy (running BatchNorm statistics, no dropout), the statistics stay as they
  were, and every parameter still moves by its gradient.

  The step's encoder has dropout 0.5; the expected values come from a dropout-0 copy, so a
  step that dropped units, or normalised with batch statistics, fails.
  """
  rng = np.random.default_rng(1)
  encoder, head = TinyEncoder(dropout=0.5), LinearClassifier(3)
  x = rng.normal(size=(6, 3, 8, 25, 2)).astype(np.float32)
  labels = rng.integers(0, 3, 6).astype(np.int32)
  variables = jax.jit(functools.partial(encoder.init, train=False))(jax.random.PRNGKey(0),
                                                                   x[:2])
  # Running statistics far from the batch's, so the two BatchNorm modes disagree.
  running = {"BatchNorm_0": {"mean": rng.normal(size=3).astype(np.float32),
                             "var": rng.uniform(0.5, 2.0, 3).astype(np.float32)}}
  variables = {"params": variables["params"], "batch_stats": running}
  config = _config(learning_rate=0.2, momentum=0.9, weight_decay=0.01)
  config.augment.enabled = False
  tx = optim.pytorch_sgd(config.momentum, config.nesterov, config.weight_decay)
  state = jax.jit(functools.partial(finetune.create_state, head=head, feature_dim=16, tx=tx,
                                    seed=0))(variables)
  dp = parallel.DataParallel("pmap", devices=tuple(jax.devices()[:1]))
  step = dp.compile(functools.partial(
      finetune.finetune_step, encoder=encoder.clone(bn_axis_name=parallel.AXIS), head=head,
      tx=tx, epoch_lrs=finetune.learning_rates(config), steps_per_epoch=4, stream="joint",
      augmentation=config.augment, encoder_mode="eval"), donate_state=False)
  new, metrics = step(dp.put_state(state), dp.put_batch({"x": x[None], "label": labels[None]}))
  new, metrics = jax.device_get((dp.get_state(new), metrics))

  # The inference-mode forward in numpy: BatchNorm with the running statistics, Dense, ReLU,
  # the mean over frames, joints and persons, the head, the cross-entropy.
  p = jax.device_get(state.params)
  bn, dense, fc = p["encoder"]["BatchNorm_0"], p["encoder"]["Dense_0"], p["fc"]["fc"]
  z = x.transpose(0, 2, 3, 4, 1).astype(np.float64)
  z = (z - running["BatchNorm_0"]["mean"]) / np.sqrt(running["BatchNorm_0"]["var"] + 1e-5)
  z = z * bn["scale"] + bn["bias"]
  h = np.maximum(z @ dense["kernel"] + dense["bias"], 0).mean(axis=(1, 2, 3))
  logits = h @ fc["kernel"] + fc["bias"]
  log_p = logits - logits.max(-1, keepdims=True)
  log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
  np.testing.assert_allclose(metrics["loss"], [-log_p[np.arange(6), labels].mean()],
                             rtol=1e-5)

  def loss_fn(params):  # the same forward, differentiated, on a model without dropout
    h, _ = TinyEncoder(dropout=0.0).apply(
        {"params": params["encoder"], "batch_stats": running}, jnp.asarray(x), train=False)
    logits = head.apply({"params": params["fc"]}, h)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

  grads = jax.device_get(jax.jit(jax.grad(loss_fn))(state.params))
  lr = 0.2  # epoch 0; the momentum buffer starts at zero
  expected = jax.tree.map(lambda q, g: q - lr * (g + 0.01 * q), p, grads)
  jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6),
               new.params, expected)
  assert np.abs(new.params["encoder"]["Dense_0"]["kernel"]
                - p["encoder"]["Dense_0"]["kernel"]).max() > 1e-4  # the encoder trains
  jax.tree.map(np.testing.assert_array_equal, new.batch_stats, running)


def test_encoder_mode_is_checked_before_compiling():
  encoder = STGCN(hidden_channels=4, hidden_dim=16, frest_blocks=())
  x, y = _separable(np.random.default_rng(0), 6)
  with pytest.raises(ValueError, match="finetune.encoder_mode is 'inference'; use eval"):
    finetune.train(encoder, {}, ArrayDataset(x, y), 3, _config(encoder_mode="inference"),
                   stream="joint", seed=0, progress=False)


def _separable(rng, n, num_frames=8):
  """`(n, 3, T, 25, 2)` skeletons whose class (0-2) is the axis all joints are shifted on."""
  labels = np.arange(n) % 3
  x = 0.3 * rng.normal(size=(n, 3, num_frames, 25, 2))
  x[np.arange(n), labels] += 1.0
  return x.astype(np.float32), labels


def test_finetuning_learns_a_separable_task():
  """Train loss and accuracy improve; unseen samples are classified in inference mode."""
  rng = np.random.default_rng(0)
  train_x, train_y = _separable(rng, 48)
  test_x, test_y = _separable(rng, 30)
  encoder = STGCN(hidden_channels=4, hidden_dim=16, dropout=0.0, frest_blocks=())
  variables = jax.jit(functools.partial(encoder.init, train=False))(jax.random.PRNGKey(0),
                                                                   train_x[:2])
  # Batch statistics: a random encoder's running statistics (mean 0, variance 1) do not
  # normalise anything, and through ten blocks of N(0, 0.02²) kernels its inference-mode
  # features are ~1e-6, too small to learn from in a few steps.
  config = _config(epochs=6, batch_size=8, decay_epochs=(5,), encoder_mode="train")
  result = finetune.train(encoder, variables, ArrayDataset(train_x, train_y), 3, config,
                          stream="joint", seed=0, progress=False)
  curve = result.curve
  assert result.num_steps == 6 * 6 and curve["epoch"] == list(range(1, 7))
  assert curve["train_loss"][-1] < 0.5 * curve["train_loss"][0]
  assert curve["train_top1"][-1] > curve["train_top1"][0] + 30
  # The fine-tuned encoder in inference mode (running statistics) on unseen samples.
  h, _ = jax.jit(functools.partial(encoder.apply, train=False))(result.encoder_variables,
                                                               test_x)
  logits = LinearClassifier(3).apply({"params": result.head_params}, h)
  assert np.mean(np.argmax(logits, -1) == test_y) >= 0.9


def test_finetune_protocol_writes_its_report(tmp_path):
  """`evaluate` with protocol `finetune`: all labels, the device layout recorded."""
  data = tmp_path / "data"
  synthetic.write_dataset(str(data), num_samples=42, seed=0, num_frames=16)
  config = eval_configs.get_config("finetune")
  config.init_from = "random"
  config.data.path = str(data)
  config.data.num_frames = 16
  config.model.hidden_channels = 4
  config.model.hidden_dim = 16
  config.model.frest_blocks = ()
  config.features.batch_size = 16
  config.finetune.epochs = 2
  config.finetune.batch_size = 8
  workdir = tmp_path / "run"
  workdir.mkdir()
  out = evaluate.evaluate(config, str(workdir))
  with open(os.path.join(out.report_dir, "results.json")) as f:
    results = json.load(f)
  train = readers.load_dataset("aimclr", str(data), "train")
  test = readers.load_dataset("aimclr", str(data), "val")
  extra = results["extra"]
  # Exactly the record's fields (no label subset: no labelled_samples), then the run's.
  assert isinstance(out.record, records.FinetuneRecord)
  fields = [f.name for f in (*dataclasses.fields(records.FinetuneRecord),
                             *dataclasses.fields(records.RunRecord))]
  assert list(extra) == [name for name in fields if name != "labelled_samples"]
  assert out.report_dir == os.path.join(str(workdir), "eval", "finetune")
  assert extra["num_labelled"] == len(train) and "labelled_samples" not in extra
  assert extra["encoder_mode"] == "eval"  # the reference's, the default
  assert extra["num_devices"] == 1 and extra["parallel_backend"] == "pmap"
  assert extra["batch_size"] == 8 and extra["steps_per_epoch"] == len(train) // 8
  assert extra["num_steps"] == 2 * extra["steps_per_epoch"]
  assert extra["curve"]["epoch"] == [1, 2] and len(extra["curve"]["train_loss"]) == 2
  assert results["num_test_samples"] == len(test)
  logits = np.load(os.path.join(out.report_dir, "test_logits.npy"))
  assert logits.shape == (len(test), 14) and np.all(np.isfinite(logits))
