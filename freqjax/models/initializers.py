"""Parameter initialisation schemes (`model.init`).

- `"reference"`: what SkeletonCLR/AimCLR's processors do to the whole model before
  pretraining, linear evaluation and fine-tuning: every convolution and linear kernel
  N(0, 0.02²) with zero bias, every BatchNorm scale N(1, 0.02²) with zero shift. Parameters
  that are not a convolution, linear or BatchNorm layer keep their own initialisation (the
  edge-importance ones, LayerNorm, FreST's filters and thresholds).
- `"flax"`: freqjax's earlier initialisation, kept so that earlier runs can be repeated:
  Flax's lecun-normal kernels and zero biases in the encoder and the Modality Harmonizer,
  PyTorch's `nn.Linear` default in the pretraining heads, N(0, 0.01²) in the fine-tuning
  classifier, BatchNorm scale 1.

The helpers take the scheme and the layer's `"flax"` initialiser and return the one to use.
"""
import jax
import jax.numpy as jnp
from flax import linen as nn

SCHEMES = ("reference", "flax")
REFERENCE_STD = 0.02


def check_scheme(scheme: str, field: str = "model.init") -> None:
  """Raises ValueError naming `field` unless `scheme` is one of `SCHEMES`."""
  if scheme not in SCHEMES:
    raise ValueError(f"{field} is {scheme!r}; use one of {', '.join(SCHEMES)} "
                     "(reference: the SkeletonCLR/AimCLR initialisation).")


def kernel(scheme: str, flax_init: nn.initializers.Initializer) -> nn.initializers.Initializer:
  """A convolution or dense kernel's initialiser: N(0, 0.02²) under `"reference"`."""
  check_scheme(scheme)
  return nn.initializers.normal(REFERENCE_STD) if scheme == "reference" else flax_init


def bias(scheme: str, flax_init: nn.initializers.Initializer) -> nn.initializers.Initializer:
  """A convolution or dense bias's initialiser: zeros under `"reference"`."""
  check_scheme(scheme)
  return nn.initializers.zeros if scheme == "reference" else flax_init


def _normal_around_one(key: jax.Array, shape, dtype=jnp.float32) -> jax.Array:
  return 1.0 + REFERENCE_STD * jax.random.normal(key, shape, dtype)


def batch_norm_scale(scheme: str) -> nn.initializers.Initializer:
  """BatchNorm's scale γ: N(1, 0.02²) under `"reference"`, ones under `"flax"`."""
  check_scheme(scheme)
  return _normal_around_one if scheme == "reference" else nn.initializers.ones
