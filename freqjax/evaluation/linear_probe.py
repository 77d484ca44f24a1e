"""Linear evaluation: a linear classifier trained on fixed (frozen-encoder) features.

The SkeletonCLR/AimCLR recipe (docs/method.md, "Evaluation protocols"): the encoder's
pooled features `(N, D)` (D = 256 for ST-GCN) go straight into a new `fc` (no
normalisation, as in SkeletonCLR; L2 normalisation is an option), trained with SGD
momentum 0.9, lr 3.0, weight decay 0, batch 128, 100 epochs, lr ×0.1 after epoch 80
(AimCLR's `lr = base·0.1^(epoch > 80)` with 1-based epochs: epochs 1-80 at 3.0, 81-100 at
0.3). `fc` starts as N(0, 0.02²) weights and zero bias, as AimCLR's `weights_init` leaves
it.

The recipe is not invariant to the scale of the features: at a fixed lr, an encoder with
larger features gets a larger effective step. `standardize` (off in the recipe) makes
every feature dimension zero-mean and unit-variance on the training features first, so
encoders of different feature scales can be compared with the same probe.

Differences from the PyTorch code, on purpose: every training sample is seen exactly once
per epoch (PyTorch drops the last incomplete batch; here it is padded and masked, its
loss averaged over its real samples only), and the epoch to report is chosen on a minival
split, never on test. Each epoch (shuffle, all steps, then train/minival/test metrics) is
one jitted call; the host reads a few scalars per epoch.
"""
from collections.abc import Callable, Sequence
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import tqdm

from freqjax import normalize, optim
from freqjax.evaluation import metrics


def epoch_batches(key: jax.Array, num_samples: int, batch_size: int
                  ) -> tuple[jax.Array, jax.Array]:
  """One epoch's shuffled batches, the last padded.

  Returns:
    `(indices, mask)`, both `(steps, batch_size)` with `steps = ceil(N / batch_size)`:
    `indices` holds a permutation of `range(N)` followed by zeros, `mask` is 1.0 on the
    real entries and 0.0 on the padding, so every sample appears exactly once unmasked.
  """
  steps = math.ceil(num_samples / batch_size)
  pad = steps * batch_size - num_samples
  order = jax.random.permutation(key, num_samples)
  indices = jnp.concatenate([order, jnp.zeros((pad,), order.dtype)])
  mask = jnp.concatenate([jnp.ones((num_samples,), jnp.float32), jnp.zeros((pad,), jnp.float32)])
  return indices.reshape(steps, batch_size), mask.reshape(steps, batch_size)


@functools.lru_cache(maxsize=16)
def _epoch_fn(num_classes: int, num_train: int, batch_size: int, momentum: float,
              nesterov: bool, weight_decay: float):
  """The jitted epoch for these static settings (cached, so repeated probes compile once).

  The lr is an argument: it only changes between epochs, as in the PyTorch recipe.
  """
  model = _classifier(num_classes)
  tx = optim.pytorch_sgd(momentum, nesterov, weight_decay)  # the step applies -lr·v

  def train_step(data, lr, carry, batch):
    params, opt_state = carry
    indices, mask = batch
    x, y = data["x_train"][indices], data["y_train"][indices]

    def loss_fn(p):
      logits = model.apply(p, x)
      per_sample = optax.softmax_cross_entropy_with_integer_labels(logits, y)
      return jnp.sum(per_sample * mask) / jnp.sum(mask), (per_sample, logits)

    (_, (per_sample, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    velocity, opt_state = tx.update(grads, opt_state, params)
    params = jax.tree_util.tree_map(lambda p, v: p - lr * v, params, velocity)
    correct = (jnp.argmax(logits, axis=-1) == y) * mask
    return (params, opt_state), (jnp.sum(per_sample * mask), jnp.sum(correct), jnp.ones(()))

  # The arrays are arguments, not closed-over constants, so XLA does not embed them.
  @jax.jit
  def run_epoch(params, opt_state, key, lr, data):
    indices, mask = epoch_batches(key, num_train, batch_size)
    (params, opt_state), (loss_sums, correct, steps) = jax.lax.scan(
        functools.partial(train_step, data, lr), (params, opt_state), (indices, mask))
    row = {"train_loss": jnp.sum(loss_sums) / num_train,
           "train_top1": 100.0 * jnp.sum(correct) / num_train,
           "steps": jnp.sum(steps)}
    row["test_top1"], row["test_top5"] = _accuracies(
        model.apply(params, data["x_test"]), data["y_test"])
    if data["x_val"] is not None:
      row["minival_top1"], _ = _accuracies(model.apply(params, data["x_val"]), data["y_val"])
    return params, opt_state, row

  return model, tx, run_epoch


def _classifier(num_classes: int) -> nn.Dense:
  # AimCLR's weights_init: fc weights N(0, 0.02²), bias 0.
  return nn.Dense(num_classes, kernel_init=nn.initializers.normal(0.02),
                  bias_init=nn.initializers.zeros)


def standardization(train_features) -> tuple[np.ndarray, np.ndarray]:
  """`(mean, inverse_std)`, both `(D,)` float32, of `(N, D)` training features.

  A dimension that is constant on the training features gets `inverse_std = 0`: it carries
  no information a probe could learn, so it is zeroed everywhere instead of letting the
  test features' deviations from the constant through.
  """
  x = np.asarray(train_features, np.float64)
  mean, std = x.mean(axis=0), x.std(axis=0)
  inverse = np.divide(1.0, std, out=np.zeros_like(std), where=std > 0)
  return mean.astype(np.float32), inverse.astype(np.float32)


def _check_split(name: str, features, labels, num_classes: int, dim: int | None) -> None:
  features = np.asarray(features)
  if features.ndim != 2 or features.shape[0] == 0:
    raise ValueError(f"{name}_features must be a non-empty (N, D) array; got shape "
                     f"{features.shape}.")
  if dim is not None and features.shape[1] != dim:
    raise ValueError(f"{name}_features have D={features.shape[1]} but train_features have "
                     f"D={dim}.")
  if not np.all(np.isfinite(features)):
    raise ValueError(f"{name}_features contain NaN or inf: the encoder's features are broken.")
  metrics.check_labels(labels, features.shape[0], num_classes, f"{name}_features")


def _accuracies(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  ranks = metrics.true_class_rank(logits, labels, xp=jnp)
  return 100.0 * jnp.mean(ranks < 1), 100.0 * jnp.mean(ranks < 5)


def train_linear_probe(
    train_features, train_labels, test_features, test_labels, *,
    num_classes: int,
    minival_features=None, minival_labels=None,
    epochs: int = 100,
    batch_size: int = 128,
    learning_rate: float = 3.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    decay_epochs: Sequence[int] = (80,),
    decay_factor: float = 0.1,
    l2_normalize: bool = False,
    standardize: bool = False,
    seed: int = 0,
    log_fn: Callable[[dict[str, float]], None] | None = None,
    desc: str | None = None,
) -> dict[str, Any]:
  """Trains `Dense(num_classes)` on fixed features; evaluates after every epoch.

  Args:
    train_features, train_labels: `(N, D)` float features and `(N,)` int labels (the
      training split minus minival).
    test_features, test_labels: `(N_test, D)`, `(N_test,)`.
    num_classes: C.
    minival_features, minival_labels: the held-out part of train used to choose the epoch
      to report; None to skip selection.
    epochs, batch_size, learning_rate, momentum, nesterov, weight_decay: SGD as in PyTorch
      (weight decay added to the gradient before momentum, bias included).
    decay_epochs, decay_factor: the lr is multiplied by `decay_factor` after each epoch
      listed (1-based epochs: `(80,)` decays from epoch 81 on).
    l2_normalize: L2-normalise every feature vector first (off in SkeletonCLR's recipe).
    standardize: subtract the mean and divide by the standard deviation of each feature
      dimension, both computed on `train_features` only (see `standardization`), then
      apply the same to minival and test (off in the recipe; not with `l2_normalize`).
    seed: initialisation and shuffling.
    log_fn: called after each epoch with that epoch's row of the curve.
    desc: a progress-bar label (one step per epoch, with ETA); None: no bar.

  Returns:
    A dict (accuracies in percent, epochs 1-based):
    - `test_top1`, `test_top5`: after the last epoch (the number to report).
    - `best_test_top1_over_epochs`, `best_test_top1_epoch`: the maximum over epochs of
      the test accuracy; selection on test, only for comparison with published tables.
    - `minival_epoch`, `minival_top1_at_minival_epoch`, `test_top1_at_minival_epoch`,
      `test_top5_at_minival_epoch`: the first epoch with the highest minival top-1 and the
      test accuracy there (None without minival).
    - `curve`: dict of per-epoch lists `epoch, lr, train_loss, train_top1, minival_top1,
      test_top1, test_top5` (train metrics are running values during the epoch).
    - `params`: final `{"params": {"kernel": (D, C), "bias": (C,)}}` as numpy;
      `minival_params`: the same at `minival_epoch` (None without minival).
    - `test_logits`: `(N_test, C)` float32 from the final params.
    - `num_train`, `num_minival`, `num_test`, `steps_per_epoch`, `num_steps`.
  """
  train_labels = np.asarray(train_labels)
  _check_split("train", train_features, train_labels, num_classes, None)
  dim = np.asarray(train_features).shape[1]
  _check_split("test", test_features, test_labels, num_classes, dim)
  has_minival = minival_features is not None or minival_labels is not None
  if has_minival:
    if minival_features is None or minival_labels is None:
      raise ValueError("pass both minival_features and minival_labels, or neither.")
    _check_split("minival", minival_features, minival_labels, num_classes, dim)
  if epochs < 1 or batch_size < 1:
    raise ValueError(f"epochs and batch_size must be >= 1; got {epochs}, {batch_size}.")

  if l2_normalize and standardize:
    raise ValueError("l2_normalize and standardize are alternatives: set at most one.")
  if standardize:
    mean, inverse_std = standardization(train_features)
    prepare = lambda x: (x - mean) * inverse_std
  else:
    prepare = normalize.l2_normalize if l2_normalize else (lambda x: x)
  x_train = prepare(jnp.asarray(train_features, jnp.float32))
  y_train = jnp.asarray(train_labels, jnp.int32)
  x_test = prepare(jnp.asarray(test_features, jnp.float32))
  y_test = jnp.asarray(test_labels, jnp.int32)
  x_val = prepare(jnp.asarray(minival_features, jnp.float32)) if has_minival else None
  y_val = jnp.asarray(minival_labels, jnp.int32) if has_minival else None

  num_train = int(x_train.shape[0])
  steps_per_epoch = math.ceil(num_train / batch_size)
  model, tx, run_epoch = _epoch_fn(num_classes, num_train, batch_size, float(momentum),
                                   bool(nesterov), float(weight_decay))
  init_key, shuffle_key = jax.random.split(jax.random.PRNGKey(seed))
  params = model.init(init_key, x_train[:1])
  opt_state = tx.init(params)
  data = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test,
          "x_val": x_val, "y_val": y_val}
  num_steps = 0

  curve: dict[str, list] = {name: [] for name in (
      "epoch", "lr", "train_loss", "train_top1", "minival_top1", "test_top1", "test_top5")}
  minival_params, best_minival = None, -1.0
  bar = tqdm.tqdm(total=epochs, desc=desc, unit="epoch", disable=desc is None, leave=False,
                  dynamic_ncols=True)
  for epoch in range(epochs):
    lr = optim.epoch_learning_rate(epoch, learning_rate, decay_epochs, decay_factor)
    params, opt_state, row = run_epoch(params, opt_state, jax.random.fold_in(shuffle_key, epoch),
                                       lr, data)
    row = {name: float(value) for name, value in jax.device_get(row).items()}
    num_steps += int(row.pop("steps"))
    row.update(epoch=epoch + 1, lr=lr)
    row.setdefault("minival_top1", None)
    if not math.isfinite(row["train_loss"]):
      bar.close()
      raise FloatingPointError(
          f"linear probe diverged in epoch {epoch + 1} (train loss {row['train_loss']}) at "
          f"lr {lr}: lower learning_rate or set l2_normalize=True for large features.")
    for name, values in curve.items():
      values.append(row[name])
    if has_minival and row["minival_top1"] > best_minival:
      best_minival, minival_params = row["minival_top1"], params
    if log_fn is not None:
      log_fn(row)
    bar.set_postfix(loss=f"{row['train_loss']:.3f}", test_top1=f"{row['test_top1']:.1f}")
    bar.update(1)
  bar.close()

  best_test = int(np.argmax(curve["test_top1"]))
  result = {
      "test_top1": curve["test_top1"][-1],
      "test_top5": curve["test_top5"][-1],
      "best_test_top1_over_epochs": curve["test_top1"][best_test],
      "best_test_top1_epoch": best_test + 1,
      "minival_epoch": None,
      "minival_top1_at_minival_epoch": None,
      "test_top1_at_minival_epoch": None,
      "test_top5_at_minival_epoch": None,
      "curve": curve,
      "params": jax.device_get(params),
      "minival_params": None,
      "test_logits": np.asarray(model.apply(params, x_test), np.float32),
      "num_train": num_train,
      "num_minival": int(x_val.shape[0]) if has_minival else 0,
      "num_test": int(x_test.shape[0]),
      "steps_per_epoch": steps_per_epoch,
      # Counted inside the jitted loop, not computed, so a test sees what really ran.
      "num_steps": num_steps,
  }
  if has_minival:
    chosen = int(np.argmax(curve["minival_top1"]))  # the first epoch with the maximum
    result.update(
        minival_epoch=chosen + 1,
        minival_top1_at_minival_epoch=curve["minival_top1"][chosen],
        test_top1_at_minival_epoch=curve["test_top1"][chosen],
        test_top5_at_minival_epoch=curve["test_top5"][chosen],
        minival_params=jax.device_get(minival_params))
  return result
