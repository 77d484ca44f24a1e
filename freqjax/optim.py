"""The one optimiser of freqjax: PyTorch's SGD, and the learning-rate schedules.

Pretraining, the linear probe and fine-tuning all use `pytorch_sgd` (docs/method.md,
"Pretraining recipe"); they differ only in how the learning rate is scheduled: per step
for pretraining (`learning_rate`), per epoch for the probes and fine-tuning
(`epoch_learning_rate`, AimCLR's `adjust_lr`).
"""
from collections.abc import Sequence

import ml_collections
import optax


def pytorch_sgd(momentum: float, nesterov: bool, weight_decay: float,
                learning_rate: optax.ScalarOrSchedule | None = None
                ) -> optax.GradientTransformation:
  """`torch.optim.SGD(momentum, weight_decay, nesterov)`: `g += wd·p; v = m·v + g; p -= lr·v`.

  The decay is added to the gradient before momentum, as PyTorch does (optax's `trace` is
  PyTorch's momentum buffer). With `learning_rate=None` the update is `v` and the caller
  applies `-lr·v` itself (the per-epoch rate of the probes and fine-tuning).
  """
  if learning_rate is None:
    return optax.chain(optax.add_decayed_weights(weight_decay),
                       optax.trace(decay=momentum, nesterov=nesterov))
  return optax.chain(optax.add_decayed_weights(weight_decay),
                     optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov))


def epoch_learning_rate(epoch: int, learning_rate: float, decay_epochs: Sequence[int],
                        decay_factor: float) -> float:
  """The lr of 0-based `epoch`: ×decay_factor for each decay epoch already completed.

  `decay_epochs=(80,)` keeps `learning_rate` for epochs 0-79 (1-based 1-80) and decays
  from 0-based epoch 80 on, as AimCLR's `adjust_lr` does.
  """
  return learning_rate * decay_factor ** sum(epoch >= e for e in decay_epochs)


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
  """Pretraining's optimiser: `pytorch_sgd` with `learning_rate(config, steps_per_epoch)`."""
  o = config.optim
  return pytorch_sgd(o.momentum, o.nesterov, o.weight_decay,
                     learning_rate(config, steps_per_epoch))
