"""The optimiser of the SkeletonCLR/AimCLR recipe (SPEC §7) as optax transformations."""
import ml_collections
import optax


def learning_rate(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """Per-step learning rate: linear warm-up, then step decay or cosine.

  The base rate is given at batch 128 and scaled linearly with the global batch.
  """
  o = config.optim
  peak = o.base_lr * o.batch_size / 128
  total = int(o.epochs * steps_per_epoch)
  warmup = int(o.warmup_epochs * steps_per_epoch)
  if o.schedule == "step":
    boundaries = {int(e * steps_per_epoch): o.decay_factor for e in o.decay_epochs}
    main = optax.piecewise_constant_schedule(peak, boundaries)
    if warmup == 0:
      return main
    return optax.join_schedules(
        [optax.linear_schedule(0.0, peak, warmup),
         optax.piecewise_constant_schedule(
             peak, {b - warmup: f for b, f in boundaries.items() if b > warmup})],
        [warmup])
  if o.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, max(total, warmup + 1))
  raise ValueError(f"optim.schedule is {o.schedule!r}; use step or cosine.")


def sgd(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.GradientTransformation:
  """PyTorch's `SGD(momentum, weight_decay)`: decay added to the gradient before momentum."""
  o = config.optim
  return optax.chain(
      optax.add_decayed_weights(o.weight_decay),
      optax.sgd(learning_rate(config, steps_per_epoch), momentum=o.momentum,
                nesterov=o.nesterov))
