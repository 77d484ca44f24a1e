"""Batch normalisation with PyTorch's conventions, synchronised over a device axis.

Flax's `nn.BatchNorm` keeps a *biased* running variance and uses the opposite momentum
convention; PyTorch's `BatchNorm{1,2}d` (which SkeletonCLR/AimCLR checkpoints come from)
keeps the unbiased one. Matching it exactly lets imported checkpoints continue training
with the same running statistics.

Training-mode statistics are computed in float32 (whatever the compute dtype) by the
model's kernel set (`freqjax.models.kernels`): reductions and autodiff (`xla`), or sums as
matrix products with a hand-written backward pass (`cpu`: XLA:CPU runs the reductions
autodiff would create several times slower).
"""
import jax
import jax.numpy as jnp
from flax import linen as nn

from freqjax.models import initializers
from freqjax.models.kernels import kernel_set
from freqjax.models.precision import at_least_float32


class BatchNorm(nn.Module):
  """Normalises the last axis over all other axes (and over `axis_name` devices).

  Attributes:
    momentum: PyTorch convention: `running = (1 - momentum) * running + momentum * batch`.
    epsilon: added to the variance (PyTorch's default 1e-5).
    axis_name: a `pmap`/`shard_map` axis; batch statistics are then those of the global
      batch, so N devices give the same numbers as one device with the whole batch.
    init_scheme: `model.init` (`freqjax.models.initializers`): the scale starts at
      N(1, 0.02²) (`"reference"`) or 1 (`"flax"`); the shift at 0 in both.
    kernels: `model.kernels` (`freqjax.models.kernels`).

  The output has the dtype of the input; the statistics and the normalisation are float32.
  """
  momentum: float = 0.1
  epsilon: float = 1e-5
  axis_name: str | None = None
  init_scheme: str = "reference"
  kernels: str = "auto"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    features = x.shape[-1]
    scale = self.param("scale", initializers.batch_norm_scale(self.init_scheme), (features,))
    bias = self.param("bias", nn.initializers.zeros, (features,))
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,))
    running_var = self.variable("batch_stats", "var", jnp.ones, (features,))
    if not train:
      mean, var = running_mean.value, running_var.value
      y = (at_least_float32(x) - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias
      return y.astype(x.dtype)
    y, mean, var = kernel_set(self.kernels).batch_norm_train(
        at_least_float32(x).reshape(-1, features), scale, bias, self.epsilon, self.axis_name)
    if not self.is_initializing():
      count = x.size // features
      if self.axis_name is not None:
        count = count * jax.lax.psum(1, self.axis_name)
      unbiased = var * count / jnp.maximum(count - 1, 1)
      running_mean.value = (1 - self.momentum) * running_mean.value + self.momentum * mean
      running_var.value = (1 - self.momentum) * running_var.value + self.momentum * unbiased
    return y.reshape(x.shape).astype(x.dtype)
