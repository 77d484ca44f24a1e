"""Batch normalisation with PyTorch's conventions, synchronised over a device axis.

Flax's `nn.BatchNorm` keeps a *biased* running variance and uses the opposite momentum
convention; PyTorch's `BatchNorm{1,2}d` (which SkeletonCLR/AimCLR checkpoints come from)
keeps the unbiased one. Matching it exactly lets imported checkpoints continue training
with the same running statistics.

Training-mode statistics and their gradients are sums over all rows of a `(rows, C)` view,
computed as matrix products (`row_sums`) with a hand-written backward pass: XLA:CPU runs
the reductions autodiff would create several times slower.
"""
import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from freqjax.models.row_sums import column_sums


def _mean(x: jax.Array, axis_name: str | None) -> jax.Array:
  """Mean over the rows of `x (rows, C)` on this device, then over the devices of `axis_name`."""
  mean = column_sums(x) / x.shape[0]
  return mean if axis_name is None else jax.lax.pmean(mean, axis_name)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm_train(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
                     axis_name: str | None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Training-mode batch norm of `x (rows, C)` with the statistics of the global batch.

  Returns `(y, mean, var)`: `y = (x − mean) / sqrt(var + ε) · scale + bias`, and the biased
  batch mean and variance `(C,)` over the rows of every device of `axis_name` (two
  passes, mean then squared deviations, as PyTorch: `E[x²] − E[x]²` loses digits on raw
  coordinates whose mean is large against their spread).
  """
  return _batch_norm_forward(x, scale, bias, epsilon, axis_name)[0]


def _batch_norm_forward(x, scale, bias, epsilon, axis_name):
  mean = _mean(x, axis_name)
  centered = x - mean
  var = _mean(jnp.square(centered), axis_name)
  inv_std = jax.lax.rsqrt(var + epsilon)
  y = centered * inv_std * scale + bias
  return (y, mean, var), (centered, inv_std, scale)


def _batch_norm_backward(epsilon, axis_name, residuals, cotangents):
  """The gradient autodiff gives, with every sum over rows a `column_sums`.

  With `x̂ = (x − μ)·r` and `g = dy·scale`, the input gradient is
  `r·(g − mean(g) − x̂·mean(g·x̂))` plus the terms of the `mean`/`var` outputs, the means
  taken over the global batch (`pmean` of the per-device means: the transpose of the
  forward's `pmean`); `scale` and `bias` get this device's sums, as autodiff does.
  """
  del epsilon
  centered, inv_std, scale = residuals
  dy, d_mean, d_var = cotangents
  rows = centered.shape[0]
  normalized = centered * inv_std
  d_bias = column_sums(dy)
  d_scale = column_sums(dy * normalized)
  # mean(g) = scale·Σdy / rows and mean(g·x̂) = scale·Σ(dy·x̂) / rows: no further sums.
  means = (scale * d_bias / rows, scale * d_scale / rows, d_mean, d_var)
  if axis_name is not None:
    means = jax.lax.pmean(means, axis_name)
  mean_g, mean_gx, d_mean, d_var = means
  dx = (inv_std * (dy * scale - mean_g - normalized * mean_gx)
        + d_mean / rows + centered * (2 * d_var / rows))
  return dx, d_scale, d_bias


batch_norm_train.defvjp(_batch_norm_forward, _batch_norm_backward)


class BatchNorm(nn.Module):
  """Normalises the last axis over all other axes (and over `axis_name` devices).

  Attributes:
    momentum: PyTorch convention: `running = (1 - momentum) * running + momentum * batch`.
    epsilon: added to the variance (PyTorch's default 1e-5).
    axis_name: a `pmap`/`shard_map` axis; batch statistics are then those of the global
      batch, so N devices give the same numbers as one device with the whole batch.
  """
  momentum: float = 0.1
  epsilon: float = 1e-5
  axis_name: str | None = None

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    features = x.shape[-1]
    scale = self.param("scale", nn.initializers.ones, (features,))
    bias = self.param("bias", nn.initializers.zeros, (features,))
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,))
    running_var = self.variable("batch_stats", "var", jnp.ones, (features,))
    if not train:
      mean, var = running_mean.value, running_var.value
      return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias
    y, mean, var = batch_norm_train(x.reshape(-1, features), scale, bias, self.epsilon,
                                    self.axis_name)
    if not self.is_initializing():
      count = x.size // features
      if self.axis_name is not None:
        count = count * jax.lax.psum(1, self.axis_name)
      unbiased = var * count / jnp.maximum(count - 1, 1)
      running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
      running_var.value = (1 - self.momentum) * running_var.value + self.momentum * unbiased
    return y.reshape(x.shape)
