"""The MICA pretraining step, written once per device and compiled data-parallel.

`train_step` sees one device's shard of the batch and talks to the other devices only by
named-axis collectives over `AXIS`: gradients and losses are `pmean`ed, BatchNorm
statistics are those of the global batch (`BatchNorm(axis_name=AXIS)`), and keys and texts
are `all_gather`ed in device order before they enter the queues, so every device holds the
same state. `freqjax.parallel.DataParallel` compiles it with `jax.pmap` or with `jax.jit(jax.shard_map(...))`
over a 1-D `data` mesh (config `parallel.backend`), and moves states and batches.

Randomness that touches samples (both augmentations, the FM noise) is drawn per sample from
`fold_in(key, global row index)`, so N devices with a global batch B give the same numbers
as one device with batch B. Dropout masks are drawn per device: equal in distribution, not
bit for bit (the equivalence tests run with dropout 0).
"""
import functools

import jax
import jax.numpy as jnp
import ml_collections
import optax

from freqjax.data import augment, streams
from freqjax.losses import moco
from freqjax.losses.feature_modulation import feature_modulation_loss
from freqjax.normalize import l2_normalize
from freqjax.parallel import AXIS, global_rows, row_keys, varying
from freqjax.pretraining.state import Networks, TrainState


def check_batch_layout(config: ml_collections.ConfigDict, num_devices: int) -> None:
  """Raises before compilation when the batch does not fit the devices or the queues."""
  b = config.optim.batch_size
  if b < 1 or b % num_devices:
    raise ValueError(f"optim.batch_size {b} is not divisible by the {num_devices} devices "
                     f"or not positive; use a positive multiple of {num_devices}.")
  queues = [("moco.queue_size", config.moco.queue_size)]
  if config.fm.weight > 0 or config.harmonizer.weight > 0:
    queues.append(("fm.text_queue_size", config.fm.text_queue_size))
  for field, size in queues:
    if size < b or size % b:
      raise ValueError(f"{field} {size} is not a multiple of optim.batch_size {b} of at "
                       "least one batch (the queue takes a whole global batch per step); use "
                       f"e.g. {b * max(1, size // b)}.")


def _views(config: ml_collections.ConfigDict, x: jax.Array, rng: jax.Array,
           row_ids: jax.Array, extreme: bool) -> jax.Array:
  """Augmented stream of each sample (`data.augment`); sample i uses `fold_in(rng, row_ids[i])`."""
  view = augment.view_from_config(config.data.augment, extreme)
  keys = row_keys(rng, row_ids)
  # Streams are computed after augmentation, as AimCLR/CrosSCLR's processors do.
  return streams.to_stream(jax.vmap(view)(keys, x), config.data.stream)


def frest_thresholds(encoder_params: dict) -> dict[str, jax.Array]:
  """`{"frest9/fres": θ, ...}` of every FreST filter, for the metrics."""
  return {f"threshold/{block}/{branch}": p["threshold"]
          for block, sub in encoder_params.items() if block.startswith("frest")
          for branch, p in sub.items() if "threshold" in p}


def train_step(state: TrainState, batch: dict, *, nets: Networks,
               tx: optax.GradientTransformation, schedule: optax.Schedule,
               config: ml_collections.ConfigDict) -> tuple[TrainState, dict]:
  """One optimizer step on this device's shard.

  Args:
    state: the replicated train state.
    batch: this device's `B` samples: `x (B, 3, T, V, M)`, and with FM or the harmonizer
      on, `text_embedding (B, E)`, `word_features (B, L, H)`, `word_mask (B, L)`.
      Optional `x_key (B, 3, T, V, M)`: the key's samples, when they are not `x` (with
      `data.augment.enabled` False, two views augmented elsewhere, as in the test against
      the PyTorch reference).

  Returns:
    The new state and `{name: scalar}` metrics, averaged over all devices.
  """
  local = batch["x"].shape[0]
  device = jax.lax.axis_index(AXIS)
  row_ids = global_rows(local)
  rng_q, rng_k, rng_drop, rng_fm = jax.random.split(jax.random.fold_in(state.rng, state.step), 4)
  rng_drop = jax.random.fold_in(rng_drop, device)
  x_q = _views(config, batch["x"], rng_q, row_ids, config.data.augment.extreme_query)
  x_k = _views(config, batch.get("x_key", batch["x"]), rng_k, row_ids, False)

  # Key encoder: EMA of the query encoder first, then the keys (its BN statistics come
  # from its own forward passes).
  key_params = moco.momentum_update(
      state.key_params, {"encoder": state.params["encoder"], "mlp": state.params["mlp"]},
      config.moco.momentum)
  (h_k, _), key_vars = nets.encoder.apply(
      {"params": key_params["encoder"], "batch_stats": state.key_batch_stats}, x_k, train=True,
      rngs={"dropout": jax.random.fold_in(rng_drop, 1)}, mutable=["batch_stats"])
  k = jax.lax.stop_gradient(l2_normalize(nets.mlp.apply({"params": key_params["mlp"]}, h_k)))

  uses_text = nets.projection is not None or nets.harmonizer is not None
  if uses_text:
    z_t = batch["text_embedding"].astype(jnp.float32)
    batch_texts = jax.lax.all_gather(z_t, AXIS, tiled=True, to="invarying")
    text_loss = functools.partial(
        feature_modulation_loss, z_t=z_t, text_queue=state.text_queue, tau_s=config.fm.tau_s,
        tau_t=config.fm.tau_t, noise_std=config.fm.noise_std, batch_texts=batch_texts,
        row_ids=row_ids)

  def loss_fn(params):
    (h, frames), new_vars = nets.encoder.apply(
        {"params": params["encoder"], "batch_stats": state.batch_stats}, x_q, train=True,
        rngs={"dropout": rng_drop}, mutable=["batch_stats"])
    q = l2_normalize(nets.mlp.apply({"params": params["mlp"]}, h))
    instance, logits = moco.info_nce(q, k, state.queue, config.moco.temperature)
    losses = {"loss/instance": instance}
    total = instance
    if nets.projection is not None:
      z_q = l2_normalize(nets.projection.apply({"params": params["projection"]}, h))
      losses["loss/fm"] = text_loss(z_q, key=rng_fm)
      total = total + config.fm.weight * losses["loss/fm"]
    if nets.harmonizer is not None:
      z_h = nets.harmonizer.apply(
          {"params": params["harmonizer"]}, frames, batch["word_features"].astype(jnp.float32),
          batch["word_mask"], train=True, rngs={"dropout": jax.random.fold_in(rng_drop, 2)})
      losses["loss/harmonizer"] = text_loss(z_h, key=jax.random.fold_in(rng_fm, 1))
      total = total + config.harmonizer.weight * losses["loss/harmonizer"]
    losses["loss"] = total
    return total, (losses, logits, new_vars["batch_stats"])

  grads, (losses, logits, batch_stats) = jax.grad(loss_fn, has_aux=True)(varying(state.params))
  grads = jax.lax.pmean(grads, AXIS)
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)

  queue, queue_ptr = moco.enqueue(state.queue, state.queue_ptr,
                                  jax.lax.all_gather(k, AXIS, tiled=True, to="invarying"))
  text_queue, text_queue_ptr = state.text_queue, state.text_queue_ptr
  if uses_text:
    text_queue, text_queue_ptr = moco.enqueue(text_queue, text_queue_ptr, batch_texts,
                                              config_field="fm.text_queue_size")

  metrics = jax.lax.pmean({**losses, "accuracy": moco.contrastive_accuracy(logits)}, AXIS)
  grad_norm = optax.tree.norm(grads)
  # A NaN/inf gradient can come with a finite loss; either one stops the run.
  finite = jnp.isfinite(metrics["loss"]) & jnp.isfinite(grad_norm)
  metrics |= {"grad_norm": grad_norm, "lr": schedule(state.step),
              "nonfinite": (~finite).astype(jnp.float32),
              **frest_thresholds(params["encoder"])}
  new_state = state.replace(
      step=state.step + 1, params=params, batch_stats=batch_stats, key_params=key_params,
      key_batch_stats=key_vars["batch_stats"], queue=queue, queue_ptr=queue_ptr,
      text_queue=text_queue, text_queue_ptr=text_queue_ptr, opt_state=opt_state)
  return new_state, metrics
