"""Fine-tuning all layers (the `semi` and `finetune` protocols), data-parallel.

The encoder and a new linear head train together on labelled samples: cross-entropy, the
normal-view augmentation (temporal crop + shear), PyTorch SGD with a per-epoch step decay
of the learning rate. `finetune.encoder_mode` says how the encoder runs while it trains:
`"eval"`, as SkeletonCLR/AimCLR's fine-tuning processor (which calls `model.eval()`
before its training loop): BatchNorm normalises with its running statistics and leaves
them unchanged, dropout is off, and every parameter still gets its gradient; or
`"train"`: batch statistics (updating the running ones) and dropout.

`finetune_step` is written once, per device, like the pretraining step
(`freqjax.pretraining.step`): it sees one device's shard of the batch, gradients and metrics are
`pmean`ed over `parallel.AXIS`, BatchNorm statistics are those of the global batch
(the encoder is built with `bn_axis_name=AXIS`), and `parallel.DataParallel` compiles
it with `jax.pmap` or `jax.jit(jax.shard_map(...))`. Sample i of the global batch is
augmented with `fold_in(key, i)` (i = device index × per-device batch + row), so N devices
with a global batch B give the same numbers as one device with batch B. Dropout masks are
drawn per device (`fold_in(key, device)`): equal in distribution, not bit for bit, to a
one-device run (the equivalence tests run with dropout 0).

The step is `(state, batch) -> (state, metrics)`: the epoch's learning rate is looked up on
device from `state.step`, so nothing else changes between calls. With several processes
(`jax.distributed`), the data axis spans every process's devices by default and each
process reads only its slice of every global batch (`DataParallel.process_slice`); every
process gets the fine-tuned weights.
"""
import dataclasses
import functools
import math
import time
from collections.abc import Sequence

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import tqdm

from freqjax import optim
from freqjax.data import augment, pipeline, streams
from freqjax.models import STGCN
from freqjax.models.heads import LinearClassifier
from freqjax.parallel import AXIS, DataParallel, global_rows, row_keys, varying

ENCODER_MODES = ("eval", "train")


@flax.struct.dataclass
class FinetuneState:
  """Fine-tuning state, replicated on every device.

  Attributes:
    step: optimizer steps taken.
    params: `{"encoder": ..., "fc": ...}` the encoder's and the head's parameters.
    batch_stats: the encoder's BatchNorm running statistics.
    opt_state: the SGD momentum (`sgd`).
    rng: the key every step's augmentation and dropout keys are folded from.
  """
  step: jax.Array
  params: dict
  batch_stats: dict
  opt_state: optax.OptState
  rng: jax.Array


@dataclasses.dataclass(frozen=True)
class FinetuneResult:
  """What `train` returns (arrays on this process's first device of the data axis).

  Attributes:
    encoder_variables: the fine-tuned encoder's `{"params", "batch_stats"}`.
    head_params: the linear head's parameters (`LinearClassifier`).
    batch_size: the global batch size used (see `global_batch_size`).
    steps_per_epoch: steps of one epoch (the remainder of the samples is dropped).
    num_steps: steps taken.
    train_seconds: wall time of the training loop, compilation included.
    curve: per epoch, `{"epoch", "lr", "train_loss", "train_top1"}` lists (1-based
      epochs; means over the epoch's steps; top-1 in percent).
    num_devices: devices the step ran on (of all processes).
    backend: `pmap` or `shard_map`.
  """
  encoder_variables: dict
  head_params: dict
  batch_size: int
  steps_per_epoch: int
  num_steps: int
  train_seconds: float
  curve: dict[str, list[float]]
  num_devices: int
  backend: str


def learning_rates(config: ml_collections.ConfigDict) -> np.ndarray:
  """`(epochs,)` float32 learning rate of each 0-based epoch (`config` is `finetune.*`)."""
  return np.asarray([optim.epoch_learning_rate(e, config.learning_rate,
                                                      config.decay_epochs, config.decay_factor)
                     for e in range(config.epochs)], np.float32)


def global_batch_size(requested: int, num_samples: int, num_devices: int) -> int:
  """The batch size to train with: `requested`, lowered when there are fewer samples.

  Args:
    requested: `finetune.batch_size`; must be divisible by `num_devices`.
    num_samples: labelled samples.
    num_devices: devices of the data axis.

  Returns:
    `requested`, or, for a smaller label set, the largest multiple of `num_devices` not
    above `num_samples` (the subset size itself on one device).

  Raises:
    ValueError: `requested` is not divisible by the devices, or there are fewer samples
      than devices.
  """
  if requested < 1:
    raise ValueError(f"finetune.batch_size is {requested}; it must be positive.")
  if requested % num_devices:
    suggestion = max(1, requested // num_devices) * num_devices
    raise ValueError(f"finetune.batch_size {requested} is not divisible by the {num_devices} "
                     f"devices; use a multiple of {num_devices} (e.g. "
                     f"--config.finetune.batch_size={suggestion}).")
  if num_samples < num_devices:
    raise ValueError(f"{num_samples} labelled samples cannot fill one sample per device on "
                     f"{num_devices} devices; fine-tune on fewer devices "
                     "(CUDA_VISIBLE_DEVICES) or with more labels.")
  return min(requested, num_samples // num_devices * num_devices)


def create_state(encoder_variables: dict, head: LinearClassifier, feature_dim: int,
                 tx: optax.GradientTransformation, seed: int) -> FinetuneState:
  """The state at step 0: the given encoder, a new head, zero momentum.

  Args:
    encoder_variables: `{"params", "batch_stats"}` of the pretrained encoder (copied, so
      the caller's arrays survive the donating step).
    head: the classifier on the `(B, feature_dim)` pooled features.
    feature_dim: the encoder's `hidden_dim`.
    tx: `optim.pytorch_sgd(...)` without a learning rate.
    seed: the head's initialisation and the step keys come from `PRNGKey(seed)`.
  """
  init_key, rng = jax.random.split(jax.random.PRNGKey(seed))
  params = {"encoder": jax.tree.map(jnp.array, encoder_variables["params"]),
            "fc": head.init(init_key, jnp.zeros((1, feature_dim)))["params"]}
  return FinetuneState(step=jnp.int32(0), params=params,
                       batch_stats=jax.tree.map(jnp.array, encoder_variables["batch_stats"]),
                       opt_state=tx.init(params), rng=rng)


def finetune_step(state: FinetuneState, batch: dict, *, encoder: STGCN,
                  head: LinearClassifier, tx: optax.GradientTransformation,
                  epoch_lrs: np.ndarray, steps_per_epoch: int, stream: str,
                  augmentation: ml_collections.ConfigDict,
                  encoder_mode: str) -> tuple[FinetuneState, dict]:
  """One SGD step on the encoder and the head, on this device's shard (call it compiled
  by `DataParallel`, which names the device axis `AXIS`).

  Args:
    state: the replicated state.
    batch: this device's `B` samples: `x (B, 3, T, V, M)` joints, augmented here and then
      turned into `stream`; `label (B,)` int.
    encoder: the ST-GCN with `bn_axis_name=AXIS`.
    head: the classifier.
    tx: `optim.pytorch_sgd(...)` without a learning rate.
    epoch_lrs: `(epochs,)` learning rate of each epoch (`learning_rates`); the step's
      epoch is `state.step // steps_per_epoch` (PyTorch SGD: `p -= lr·v`).
    steps_per_epoch: steps of one epoch.
    stream: `data.stream` the encoder was pretrained on.
    augmentation: the normal view's settings (`finetune.augment`: enabled, padding_ratio,
      shear_amplitude; see `augment.view_from_config`).
    encoder_mode: `"eval"`: the encoder's forward in inference mode (running BatchNorm
      statistics, kept as they are; no dropout), differentiated like any other; `"train"`:
      batch statistics of the global batch, running statistics updated, dropout.

  Returns:
    The new state and `{"loss", "accuracy"}`: means over the global batch (accuracy in
    percent), equal on every device.
  """
  x, labels = batch["x"], batch["label"]
  local = x.shape[0]
  device = jax.lax.axis_index(AXIS)
  augment_key, dropout_key = jax.random.split(jax.random.fold_in(state.rng, state.step))
  if augmentation.enabled:
    keys = row_keys(augment_key, global_rows(local))  # independent of the sharding
    view = augment.view_from_config(augmentation)
    x = jax.vmap(view)(keys, x)
  x = streams.to_stream(x, stream)
  dropout_key = jax.random.fold_in(dropout_key, device)

  def loss_fn(params):
    variables = {"params": params["encoder"], "batch_stats": state.batch_stats}
    if encoder_mode == "train":
      (h, _), new_vars = encoder.apply(variables, x, train=True, rngs={"dropout": dropout_key},
                                       mutable=["batch_stats"])
      batch_stats = new_vars["batch_stats"]
    else:
      (h, _), batch_stats = encoder.apply(variables, x, train=False), state.batch_stats
    logits = head.apply({"params": params["fc"]}, h)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (logits, batch_stats)

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(varying(state.params))
  # Every device holds B/N rows: the mean of the per-device gradients is the global one.
  grads = jax.lax.pmean(grads, AXIS)
  velocity, opt_state = tx.update(grads, state.opt_state, state.params)
  epoch = jnp.minimum(state.step // steps_per_epoch, len(epoch_lrs) - 1)
  lr = jnp.asarray(epoch_lrs)[epoch]
  params = jax.tree.map(lambda p, v: p - lr * v, state.params, velocity)
  accuracy = 100.0 * jnp.mean(jnp.argmax(logits, axis=-1) == labels)
  metrics = jax.lax.pmean({"loss": loss, "accuracy": accuracy}, AXIS)
  return (state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                        opt_state=opt_state),
          metrics)


def train(encoder: STGCN, encoder_variables: dict, dataset: pipeline.Dataset,
          num_classes: int, config: ml_collections.ConfigDict, *, stream: str, seed: int,
          prefetch: int = 2, backend: str = "pmap",
          devices: Sequence[jax.Device] | None = None, name: str = "finetune",
          progress: bool = True) -> FinetuneResult:
  """Fine-tunes the encoder and a new linear head on all samples of `dataset`.

  Args:
    encoder: the pretrained ST-GCN (its `bn_axis_name` is replaced by `AXIS`).
    encoder_variables: its `{"params", "batch_stats"}`.
    dataset: the labelled samples (`x (N, 3, T, V, M)` joints as `dataset.read` returns).
    num_classes: the head's outputs.
    config: the eval config's `finetune.*` (encoder_mode, epochs, batch_size,
      learning_rate, momentum, nesterov, weight_decay, decay_epochs, decay_factor, augment).
      The head is initialised as the encoder's `init_scheme` says.
    stream: `data.stream`, computed on device after the augmentation.
    seed: shuffling, the head's initialisation and the augmentation keys.
    prefetch: batches read ahead in a background thread.
    backend: `pmap` or `shard_map` (`DataParallel`).
    devices: the data axis (default: all devices, of every process).
    name: the progress bar's label and the name in error messages.
    progress: show a progress bar.

  Raises:
    ValueError: `config.batch_size` is not divisible by the device count, or
      `finetune.encoder_mode` or a `finetune.augment` setting is invalid (raised before
      anything is compiled).
    FloatingPointError: the loss became NaN/inf.
  """
  if config.encoder_mode not in ENCODER_MODES:
    raise ValueError(f"finetune.encoder_mode is {config.encoder_mode!r}; use eval (the "
                     "reference's: running BatchNorm statistics, no dropout) or train.")
  augment.check_config(config.augment, "finetune.augment")
  dp = DataParallel(backend, devices=tuple(devices or jax.devices()))
  batch_size = global_batch_size(config.batch_size, len(dataset), dp.num_devices)
  if batch_size < config.batch_size:
    tqdm.tqdm.write(f"{name}: {len(dataset)} labelled samples, fewer than finetune.batch_size "
                    f"{config.batch_size}: batches of {batch_size}.")
  steps_per_epoch = pipeline.steps_per_epoch(len(dataset), batch_size)

  head = LinearClassifier(num_classes, init_scheme=encoder.init_scheme)
  tx = optim.pytorch_sgd(config.momentum, config.nesterov, config.weight_decay)
  epoch_lrs = learning_rates(config)
  state = jax.jit(functools.partial(create_state, head=head, feature_dim=encoder.hidden_dim,
                                    tx=tx, seed=seed))(encoder_variables)
  state = dp.put_state(state)
  step_fn = dp.compile(functools.partial(
      finetune_step, encoder=encoder.clone(bn_axis_name=AXIS), head=head, tx=tx,
      epoch_lrs=epoch_lrs, steps_per_epoch=steps_per_epoch, stream=stream,
      augmentation=config.augment, encoder_mode=config.encoder_mode))

  batches = pipeline.prefetch(
      pipeline.train_batches(dataset, batch_size, seed, num_devices=dp.num_local_devices,
                             process_index=dp.process_slice[0],
                             process_count=dp.process_slice[1]),
      size=prefetch, put=lambda b: dp.put_batch({"x": b["x"], "label": b["label"]}))
  curve = {"epoch": [], "lr": [], "train_loss": [], "train_top1": []}
  bar = tqdm.tqdm(total=config.epochs * steps_per_epoch, unit="step", desc=name,
                  dynamic_ncols=True, disable=not progress)
  start = time.perf_counter()
  with batches:
    for epoch in range(config.epochs):
      metrics = []
      for _ in range(steps_per_epoch):
        state, m = step_fn(state, next(batches))
        metrics.append(m)
        bar.update(1)
      # pmap returns one copy per device, shard_map one replicated scalar: take the first.
      means = {k: float(np.mean([np.asarray(m[k]).reshape(-1)[0] for m in metrics]))
               for k in ("loss", "accuracy")}
      if not math.isfinite(means["loss"]):
        raise FloatingPointError(f"{name}: the loss is {means['loss']} in epoch "
                                 f"{epoch + 1}; lower finetune.learning_rate.")
      lr = optim.epoch_learning_rate(epoch, config.learning_rate,
                                            config.decay_epochs, config.decay_factor)
      for field, value in (("epoch", epoch + 1), ("lr", lr), ("train_loss", means["loss"]),
                           ("train_top1", means["accuracy"])):
        curve[field].append(value)
      bar.set_postfix(epoch=epoch + 1, loss=f"{means['loss']:.3f}")
  bar.close()
  train_seconds = time.perf_counter() - start

  # One copy on one of this process's devices, ready for a single-device forward (the
  # test pass).
  state = jax.device_put(dp.get_state(state), dp.local_devices[0])
  return FinetuneResult(
      encoder_variables={"params": state.params["encoder"], "batch_stats": state.batch_stats},
      head_params=state.params["fc"], batch_size=batch_size, steps_per_epoch=steps_per_epoch,
      num_steps=int(state.step), train_seconds=train_seconds, curve=curve,
      num_devices=dp.num_devices, backend=backend)
