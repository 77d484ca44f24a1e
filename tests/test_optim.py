"""`freqjax.optim` against `torch.optim.SGD` and its learning-rate schedulers.

Pretraining schedules per step (`optim.learning_rate`); the reference (AimCLR's pretraining
processor) sets the rate once per epoch, `base · 0.1^(epoch > 250)` with 1-based epochs,
and has no warm-up. Here PyTorch steps `MultiStepLR` once per epoch, as the reference
does, and freqjax's per-step rates and parameters must follow it over a few hundred steps:
linear scaling with the batch, warm-up, the decay at epoch 250, cosine, momentum and
weight decay. Both sides run in float64.
"""
import jax
import numpy as np
import pytest

from configs import pretrain
from freqjax import optim
from helpers import import_torch

STEPS_PER_EPOCH = 2
EPOCHS = 300  # 600 steps; the decay at epoch 250 is step 500
WEIGHT_DECAY = 0.05  # large, so a wrong decay shows within a few hundred steps


def _config(schedule: str, warmup_epochs: float, batch_size: int):
  config = pretrain.get_config("test")
  o = config.optim
  o.batch_size, o.base_lr, o.momentum, o.nesterov = batch_size, 0.1, 0.9, False
  o.weight_decay, o.epochs, o.schedule = WEIGHT_DECAY, EPOCHS, schedule
  o.decay_epochs, o.decay_factor, o.warmup_epochs = (250,), 0.1, warmup_epochs
  return config


def _gradient(params: list[np.ndarray]) -> list[np.ndarray]:
  """A gradient that depends on where the parameters are (so momentum shapes the path)."""
  return [np.sin(3.0 * p) + 0.5 * p - 0.3 for p in params]


def _torch_run(schedule: str, warmup_epochs: float, peak: float, initial):
  """The reference's loop: SGD, per-epoch MultiStepLR (or per-step cosine), linear warm-up
  per step. Returns the lr of every step and the final parameters."""
  torch = import_torch()
  params = [torch.tensor(p, requires_grad=True) for p in initial]
  opt = torch.optim.SGD(params, lr=peak, momentum=0.9, weight_decay=WEIGHT_DECAY)
  total, warmup = EPOCHS * STEPS_PER_EPOCH, int(warmup_epochs * STEPS_PER_EPOCH)
  per_step = per_epoch = warm = None
  if schedule == "step":
    if warmup:
      # Chainable with MultiStepLR as long as warm-up ends before the first milestone.
      warm = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, s / warmup))
    per_epoch = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[250], gamma=0.1)
  elif warmup:
    per_step = torch.optim.lr_scheduler.SequentialLR(opt, [
        torch.optim.lr_scheduler.LambdaLR(opt, lambda s: s / warmup),
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total - warmup)], [warmup])
  else:
    per_step = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
  rates = []
  for step in range(total):
    rates.append(opt.param_groups[0]["lr"])
    for p, g in zip(params, _gradient([p.detach().numpy() for p in params])):
      p.grad = torch.tensor(g)
    opt.step()
    if per_step is not None:
      per_step.step()
    if warm is not None and step + 1 <= warmup:
      warm.step()
    if per_epoch is not None and (step + 1) % STEPS_PER_EPOCH == 0:
      per_epoch.step()
  return np.array(rates), [p.detach().numpy() for p in params]


@pytest.mark.parametrize("schedule,warmup_epochs,batch_size", [
    ("step", 0.0, 128), ("step", 5.0, 64), ("cosine", 0.0, 256), ("cosine", 5.0, 64)])
def test_sgd_and_schedule_follow_pytorch(schedule, warmup_epochs, batch_size):
  config = _config(schedule, warmup_epochs, batch_size)
  peak = 0.1 * batch_size / 128  # the reference's rule: lr 0.1 at batch 128, linear
  rng = np.random.default_rng(0)
  initial = [rng.normal(size=(3, 4)), rng.normal(size=(5,))]
  want_rates, want_params = _torch_run(schedule, warmup_epochs, peak, initial)

  schedule_fn = optim.learning_rate(config, STEPS_PER_EPOCH)
  tx = optim.sgd(config, STEPS_PER_EPOCH)
  with jax.enable_x64(True):
    params = [np.array(p) for p in initial]
    state = tx.init(params)
    update = jax.jit(tx.update)
    rates = []
    for step in range(len(want_rates)):
      rates.append(float(schedule_fn(step)))
      updates, state = update(_gradient([np.asarray(p) for p in params]), state, params)
      params = [p + u for p, u in zip(params, updates)]
  assert params[0].dtype == np.float64
  np.testing.assert_allclose(rates, want_rates, rtol=1e-9, atol=1e-12 * peak)
  assert max(rates) == pytest.approx(peak)
  if schedule == "step":  # the decay falls on epoch 250 whatever the warm-up
    decay_step = 250 * STEPS_PER_EPOCH
    assert rates[decay_step - 1] == pytest.approx(peak)
    assert rates[decay_step] == pytest.approx(0.1 * peak)
  for got, want in zip(params, want_params):
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-9, atol=1e-12)


def test_epoch_rate_and_caller_applied_sgd_follow_pytorch():
  """The probes' optimiser: `pytorch_sgd` without a rate, `p −= lr·v` with the epoch's rate
  (`epoch_learning_rate`), against SGD + MultiStepLR stepped per epoch."""
  torch = import_torch()
  rng = np.random.default_rng(1)
  initial = [rng.normal(size=(4, 3)), rng.normal(size=(3,))]
  params_t = [torch.tensor(p, requires_grad=True) for p in initial]
  opt = torch.optim.SGD(params_t, lr=0.2, momentum=0.9, weight_decay=WEIGHT_DECAY)
  decay = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[8], gamma=0.1)
  tx = optim.pytorch_sgd(0.9, False, WEIGHT_DECAY)
  with jax.enable_x64(True):
    params = [np.array(p) for p in initial]
    state = tx.init(params)
    for epoch in range(10):
      lr = optim.epoch_learning_rate(epoch, 0.2, (8,), 0.1)
      assert lr == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)
      for _ in range(3):
        for p, g in zip(params_t, _gradient([p.detach().numpy() for p in params_t])):
          p.grad = torch.tensor(g)
        opt.step()
        velocity, state = tx.update(_gradient(params), state, params)
        params = [np.asarray(p - lr * v) for p, v in zip(params, velocity)]
      decay.step()
  for got, want in zip(params, params_t):
    np.testing.assert_allclose(got, want.detach().numpy(), rtol=1e-9, atol=1e-12)
