"""Batch normalisation with PyTorch's conventions, synchronised over a device axis.

Flax's `nn.BatchNorm` keeps a *biased* running variance and uses the opposite momentum
convention; PyTorch's `BatchNorm{1,2}d` (which SkeletonCLR/AimCLR checkpoints come from)
keeps the unbiased one. Matching it exactly lets imported checkpoints continue training
with the same running statistics.
"""
import jax
import jax.numpy as jnp
from flax import linen as nn


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
    else:
      axes = tuple(range(x.ndim - 1))
      count = x.size // features
      mean = jnp.mean(x, axes)
      if self.axis_name is not None:
        mean = jax.lax.pmean(mean, self.axis_name)
      # Two passes (mean, then squared deviations) as PyTorch does: E[x^2] - E[x]^2
      # loses digits on raw coordinates whose mean is large against their spread.
      var = jnp.mean(jnp.square(x - mean), axes)
      if self.axis_name is not None:
        var = jax.lax.pmean(var, self.axis_name)
        count = count * jax.lax.psum(1, self.axis_name)
      if not self.is_initializing():
        unbiased = var * count / jnp.maximum(count - 1, 1)
        running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
        running_var.value = (1 - self.momentum) * running_var.value + self.momentum * unbiased
    return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias
