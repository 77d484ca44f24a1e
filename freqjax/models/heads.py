"""Heads on the encoder's 256-d feature `h`: MoCo MLP, Feature Modulation projection, classifier.

docs/method.md, "Heads". Initialisation (`init_scheme`, the config's `model.init`): under
`"reference"` every kernel N(0, 0.02²) and every bias 0, as SkeletonCLR/AimCLR's
`weights_init` leaves the model; under `"flax"` (freqjax's earlier one) `nn.Linear`'s
default (kernel and bias U(±1/√fan_in)) for the pretraining heads and N(0, 0.01²) kernel,
zero bias for the classifier.

PyTorch checkpoint mapping (SkeletonCLR / AimCLR, `mlp=True`): `encoder_q.fc` is
`nn.Sequential(Linear(256, 256), ReLU(), Linear(256, 128))`, so

  encoder_q.fc.0.weight (256, 256) -> MLPHead params['layers_0']['kernel'] = weight.T
  encoder_q.fc.0.bias   (256,)     -> MLPHead params['layers_0']['bias']
  encoder_q.fc.2.weight (128, 256) -> MLPHead params['layers_2']['kernel'] = weight.T
  encoder_q.fc.2.bias   (128,)     -> MLPHead params['layers_2']['bias']

(the `nn.Sequential` index i becomes `layers_i`, as in `flax.linen.Sequential`;
`encoder_k.fc.*` maps the same way into the key encoder). A linear-evaluation checkpoint's
`encoder_q.fc.weight (classes, 256)` / `fc.bias` map to LinearClassifier
`params['fc']['kernel'] = weight.T` / `['fc']['bias']`. `mlp_head_params_from_torch` does
the first mapping.
"""
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from freqjax.models import initializers
from freqjax.models.precision import at_least_float32

# PyTorch nn.Linear's kaiming_uniform(a=√5) is U(±1/√fan_in) = variance scaling 1/3, uniform.
_torch_linear_kernel_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _torch_linear_bias_init(fan_in: int) -> nn.initializers.Initializer:
  bound = 1.0 / np.sqrt(fan_in)

  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)

  return init


def _torch_dense(features: int, fan_in: int, init_scheme: str, name: str,
                 dtype: Any = None) -> nn.Dense:
  """A Dense initialised as `init_scheme` says (`"flax"`: as PyTorch's `nn.Linear`), its
  product in `dtype` (None: the input's), its parameters float32."""
  return nn.Dense(features, dtype=dtype,
                  kernel_init=initializers.kernel(init_scheme, _torch_linear_kernel_init),
                  bias_init=initializers.bias(init_scheme, _torch_linear_bias_init(fan_in)),
                  name=name)


class MLPHead(nn.Module):
  """MoCo projection head: Dense(hidden) → ReLU → Dense(features). `(N, 256) -> (N, 128)`.

  Attributes:
    hidden: width of the hidden layer (256).
    features: output width (128, MoCo's embedding).
    init_scheme: `model.init` (see the module docstring).
    dtype: the products' dtype (`model.compute_dtype`; None: the input's). The output is
      float32 (or wider) for the losses.
  """
  hidden: int = 256
  features: int = 128
  init_scheme: str = "reference"
  dtype: Any = None

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    """`h (N, C)` pooled encoder features -> `(N, features)` (not normalised)."""
    x = _torch_dense(self.hidden, h.shape[-1], self.init_scheme, "layers_0", self.dtype)(h)
    x = nn.relu(x)
    x = _torch_dense(self.features, self.hidden, self.init_scheme, "layers_2", self.dtype)(x)
    return at_least_float32(x)


class Projection(nn.Module):
  """Feature Modulation projection to the text space: one Dense, `(N, 256) -> (N, 512)`.

  A single linear map (an open choice: docs/method.md, "Open choices"); its output is
  L2-normalised by the caller.

  Attributes:
    features: output width (512, CLIP ViT-B/32's embedding).
    init_scheme: `model.init` (see the module docstring).
    dtype: the product's dtype (`model.compute_dtype`; None: the input's). The output is
      float32 (or wider) for the losses.
  """
  features: int = 512
  init_scheme: str = "reference"
  dtype: Any = None

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    """`h (N, C)` pooled encoder features -> `(N, features)` (not normalised)."""
    return at_least_float32(
        _torch_dense(self.features, h.shape[-1], self.init_scheme, "fc", self.dtype)(h))


class LinearClassifier(nn.Module):
  """Linear-evaluation classifier: `(N, 256) -> (N, num_classes)` logits.

  Attributes:
    num_classes: number of action classes (60, 120, 51, ...).
    init_scheme: `model.init`: kernel N(0, 0.02²) (`"reference"`) or N(0, 0.01²)
      (`"flax"`), bias 0.
  """
  num_classes: int
  init_scheme: str = "reference"

  @nn.compact
  def __call__(self, h: jax.Array) -> jax.Array:
    """`h (N, C)` frozen encoder features -> `(N, num_classes)` logits."""
    kernel_init = initializers.kernel(self.init_scheme, nn.initializers.normal(0.01))
    return nn.Dense(self.num_classes, kernel_init=kernel_init,
                    bias_init=nn.initializers.zeros_init(), name="fc")(h)


def mlp_head_params_from_torch(state_dict: Mapping[str, Any], prefix: str = "encoder_q.fc",
                               dtype: np.dtype = np.float32) -> dict[str, dict[str, np.ndarray]]:
  """MLPHead params from a PyTorch SkeletonCLR/AimCLR state dict (see the module docstring).

  Args:
    state_dict: name -> array (numpy or anything `np.asarray` accepts, e.g. CPU tensors).
    prefix: the `nn.Sequential` holding the head, `encoder_q.fc` or `encoder_k.fc`.
    dtype: of the returned arrays.

  Returns:
    `{'layers_0': {'kernel', 'bias'}, 'layers_2': {'kernel', 'bias'}}` as numpy `dtype`.

  Raises:
    KeyError: naming the missing entry when the state dict has no such head.
  """
  params = {}
  for index in (0, 2):
    names = {"kernel": f"{prefix}.{index}.weight", "bias": f"{prefix}.{index}.bias"}
    missing = [name for name in names.values() if name not in state_dict]
    if missing:
      raise KeyError(f"state dict has no {missing[0]}: is it a SkeletonCLR/AimCLR checkpoint "
                     f"with mlp=True, and is the prefix {prefix!r} right?")
    params[f"layers_{index}"] = {
        "kernel": np.asarray(state_dict[names["kernel"]], dtype).T,
        "bias": np.asarray(state_dict[names["bias"]], dtype),
    }
  return params
