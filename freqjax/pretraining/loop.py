"""MICA pretraining: the loop around `train_step` (data, checkpoints, metrics, resume).

`pretrain(config, workdir)` is what `python train.py` calls. A run writes to
`workdir`: `config.json` (the resolved config), `checkpoints/` (Orbax, whole train state),
`metrics.jsonl` and `tensorboard/`.

Resuming a workdir that holds checkpoints: the config is compared with `config.json`
before anything is written (`freqjax.pretraining.resume`), the newest checkpoint that
restores is loaded (`freqjax.checkpoints.store.restore_latest`), and the logs of steps
after it, written before a kill, are dropped, so each step is logged once.
"""
import dataclasses
import functools
import json
import logging
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from freqjax import cli, optim, parallel
from freqjax.checkpoints import store as checkpoint
from freqjax.data import augment, pipeline, readers
from freqjax.parallel import AXIS, DataParallel
from freqjax.pretraining.metric_writer import MetricWriter
from freqjax.pretraining import resume
from freqjax.pretraining.monitor import KnnMonitor
from freqjax.pretraining.state import TrainState, build_networks, create_train_state
from freqjax.pretraining.step import check_batch_layout, train_step
from freqjax.text import table as text_table


class ConfigError(cli.UserError, ValueError):
  """A pretraining config field has a value that cannot run; the message names it."""


class DivergedError(cli.UserError, FloatingPointError):
  """The loss or the gradient became NaN/inf; the message names the last good checkpoint."""


def check_config(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises ConfigError, naming the field, for a config that cannot run (before any JAX)."""
  try:
    augment.check_config(config.data.augment)
    check_batch_layout(config, num_devices)
    optim.learning_rate(config, 1)  # an unknown optim.schedule
    build_networks(config, None)  # model.init, model.kernels, model.compute_dtype
  except ValueError as e:
    raise ConfigError(str(e)) from e


def load_training_data(config: ml_collections.ConfigDict):
  """`(dataset, extra_fn)`: the training split and, when a text loss is on, the function
  that adds each batch's text embeddings."""
  dataset = readers.load_dataset(config.data.format, config.data.path, config.data.split,
                                 num_frames=config.data.num_frames,
                                 num_classes=config.data.num_classes)
  if jax.process_index() == 0:
    for warning in readers.implausible_data(dataset, seed=config.seed):
      logging.warning("%s", warning)
  if config.fm.weight <= 0 and config.harmonizer.weight <= 0:
    return dataset, None
  if not config.text.path:
    raise ConfigError("fm.weight or harmonizer.weight > 0 needs text embeddings: set "
                     "text.path to a file from `python -m freqjax.text.embed`, or set both "
                     "weights to 0.")
  table = text_table.TextTable.load(config.text.path, expected_dim=config.fm.dim,
                                    sentences=config.text.sentences, seed=config.seed)
  return dataset, text_table.dataset_extra_fn(table, dataset)


def due(step: int, every: int, total: int | None = None) -> bool:
  """Whether a periodic action runs after `step` steps: every `every` steps (never for
  `every <= 0`), and at the last step `total` when given."""
  return (every > 0 and step % every == 0) or step == total


def _write_training_curves(workdir: str) -> None:
  """`workdir/training_curves.png` from `metrics.jsonl`, when matplotlib is installed.

  Imported here, not at the top: training never needs matplotlib, and a picture that
  cannot be drawn is not worth stopping a run for.
  """
  try:
    from freqjax.visualize import curves  # pylint: disable=import-outside-toplevel
    curves.plot_training_curves(os.path.join(workdir, "metrics.jsonl"))
  except Exception as e:  # pylint: disable=broad-except
    logging.warning("training curves not drawn: %s", e)


def _initial_state(config, nets, tx, dataset, extra_fn, resuming: bool) -> TrainState:
  """A new train state; the encoder from `config.init_from` unless a checkpoint will
  replace it (`resuming`)."""
  sample_x = jnp.asarray(dataset.read(np.arange(2)))
  words = (None if extra_fn is None else
           jnp.asarray(extra_fn(np.arange(2), 0)["word_features"], jnp.float32))
  # One compiled program instead of hundreds of eagerly dispatched ops.
  state = jax.jit(functools.partial(create_train_state, config, nets, tx))(sample_x, words)
  if config.init_from and not resuming:
    variables, _, where = checkpoint.load_encoder_variables(config.init_from, nets.encoder)
    encoder = checkpoint.merge_variables(
        {"params": state.params["encoder"], "batch_stats": state.batch_stats}, variables, where)
    params = dict(state.params, encoder=encoder["params"])
    state = state.replace(
        params=params, batch_stats=encoder["batch_stats"],
        opt_state=tx.init(params),
        key_params={"encoder": jax.tree.map(jnp.array, encoder["params"]),
                    "mlp": state.key_params["mlp"]},
        key_batch_stats=jax.tree.map(jnp.array, encoder["batch_stats"]))
    tqdm.tqdm.write(f"Encoder initialised from {where}.")
  return state


def _summarise(pending: list[dict], first_step: int) -> tuple[dict[str, float], str | None]:
  """Means of the per-step metrics (one transfer) and, if a step was not finite, what
  went wrong at the first such step (its loss or, with a finite loss, its gradient)."""
  stacked = jax.device_get(jax.tree.map(lambda *xs: jnp.stack(xs), *pending))
  stacked = {k: np.asarray(v).reshape(len(pending), -1)[:, 0] for k, v in stacked.items()}
  bad = np.flatnonzero(stacked.pop("nonfinite") > 0)
  summary = {k: float(v.mean()) for k, v in stacked.items()}
  summary["lr"] = float(stacked["lr"][-1])
  if not bad.size:
    return summary, None
  what = ("loss" if not np.isfinite(stacked["loss"][bad[0]]) else
          f"gradient (norm {stacked['grad_norm'][bad[0]]}, loss finite)")
  # Numbered as metrics and checkpoints are: step s is the update that makes state.step s.
  return summary, f"Non-finite {what} at step {first_step + int(bad[0]) + 1}"


def _has_checkpoint(workdir: str) -> bool:
  """Whether `workdir` holds a finished checkpoint (Orbax names them by their step)."""
  directory = os.path.join(workdir, checkpoint.CHECKPOINT_DIR)
  return os.path.isdir(directory) and any(name.isdigit() for name in os.listdir(directory))


def pretrain(config: ml_collections.ConfigDict, workdir: str,
             allow_config_change: bool = False) -> TrainState:
  """Pretrains (or resumes) a MICA encoder; returns the final state (one copy, on device).

  Args:
    config: the resolved pretraining config.
    workdir: the run's directory; a run there is resumed.
    allow_config_change: resume even when `config` changes fields of the saved run
      (`freqjax.pretraining.resume`); without it that is a `ResumeConfigError`.
  """
  resuming = _has_checkpoint(workdir)
  resume.check_config(config, workdir, resuming, allow_config_change)
  dp = DataParallel(config.parallel.backend)
  check_config(config, dp.num_devices)
  is_main = jax.process_index() == 0

  dataset, extra_fn = load_training_data(config)
  steps_per_epoch = pipeline.steps_per_epoch(len(dataset), config.optim.batch_size)
  if steps_per_epoch == 0:
    raise ConfigError(f"{config.data.path}: {len(dataset)} training samples are fewer than "
                      f"one batch of optim.batch_size {config.optim.batch_size}.")
  total_steps = int(config.optim.epochs * steps_per_epoch)
  tx = optim.sgd(config, steps_per_epoch)
  schedule = optim.learning_rate(config, steps_per_epoch)

  # The networks, built once: the step's copy normalises over the device axis.
  nets = build_networks(config, bn_axis_name=None)
  step_nets = dataclasses.replace(nets, encoder=nets.encoder.clone(bn_axis_name=AXIS))
  state = _initial_state(config, nets, tx, dataset, extra_fn, resuming)
  os.makedirs(workdir, exist_ok=True)
  # Orbax's first barrier is a collective: meet first (see wait_for_all_processes).
  parallel.wait_for_all_processes("checkpoint manager")
  mngr = checkpoint.manager(workdir, config.keep_checkpoints)
  restored = checkpoint.restore_latest(mngr, state)
  if restored is not None:
    state, meta = restored
    tqdm.tqdm.write(f"Resuming {workdir} from step {int(state.step)} ({json.dumps(meta)}).")
  start_step = int(state.step)
  if is_main:
    # Only now, with the checkpoint restored: a failing restore keeps the saved record.
    resume.write_config(config, workdir, start_step)

  step_fn = dp.compile(functools.partial(
      train_step, nets=step_nets, tx=tx, schedule=schedule,
      config=config))
  state = dp.put_state(state)
  batches = pipeline.prefetch(
      pipeline.train_batches(dataset, config.optim.batch_size, config.seed,
                             start_step=start_step, num_devices=dp.num_local_devices,
                             extra_fn=extra_fn, threads=config.data.loader_threads),
      size=config.data.prefetch, put=dp.put_batch)
  monitor_every = round(config.monitor.knn_every_epochs * steps_per_epoch)
  monitor = KnnMonitor(config, dataset) if monitor_every > 0 and is_main else None
  writer = MetricWriter(workdir, enabled=is_main, start_step=start_step)
  bar = tqdm.tqdm(total=total_steps, initial=start_step, disable=not is_main, unit="step",
                  dynamic_ncols=True, desc="pretrain")
  pending, pending_from, timer = [], start_step, (time.perf_counter(), start_step)
  try:
    for step in range(start_step, total_steps):
      state, metrics = step_fn(state, next(batches))
      pending.append(metrics)
      done = step + 1
      save_now = due(done, config.checkpoint_every_steps, total_steps)
      monitor_now = monitor is not None and due(done, monitor_every)
      if save_now or monitor_now or due(done, config.log_every_steps):
        summary, nonfinite = _summarise(pending, pending_from)
        if nonfinite is not None:
          mngr.wait_until_finished()
          last = mngr.latest_step()
          raise DivergedError(
              f"{nonfinite}; stopping (nothing of it was saved). " + (
                  f"The last good checkpoint is step {last} in {workdir}: resume from it "
                  "with a lower optim.base_lr (and --allow_config_change), or check the data."
                  if last is not None else
                  "No checkpoint was saved: start again with a lower optim.base_lr, or "
                  "check the data."))
        now = time.perf_counter()
        summary["samples_per_second"] = (
            (done - timer[1]) * config.optim.batch_size / (now - timer[0]))
        summary["epoch"] = done / steps_per_epoch
        if monitor_now:
          query = dp.get_state(state)
          summary |= monitor(nets.encoder, {"params": query.params["encoder"],
                                       "batch_stats": query.batch_stats})
        writer.write(done, summary)
        bar.set_postfix(loss=f"{summary['loss']:.3f}",
                        samples_s=f"{summary['samples_per_second']:.1f}")
        # The monitor's time is not training time: the next interval starts after it.
        pending, pending_from, timer = [], done, (time.perf_counter(), done)
      if save_now:
        # As numpy: Orbax writes host arrays once, from process 0, where it refuses each
        # process's own copy of device arrays (several processes).
        checkpoint.save(mngr, done, jax.device_get(dp.get_state(state)),
                        {"step": done, "epoch": done / steps_per_epoch,
                         "samples_seen": done * config.optim.batch_size})
        if is_main:
          _write_training_curves(workdir)
      bar.update(1)
  finally:
    batches.close()
    bar.close()
    mngr.wait_until_finished()
    writer.close()
  return dp.get_state(state)
