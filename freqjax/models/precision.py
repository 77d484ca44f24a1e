"""Mixed precision (`model.compute_dtype`): what runs in bfloat16 and what stays float32.

Convolutions, matrix products and attention run in the compute dtype. Parameters (and so
the optimizer state), BatchNorm and LayerNorm statistics, FreST's FFTs and filters, the
pooled features, the heads' outputs and everything after them (softmax, KL, InfoNCE, the
queues) stay float32: modules take float32 parameters, cast them to the dtype of the
activations they multiply, and hand float32 results to the losses.
"""
import jax
import jax.numpy as jnp

# Config name -> the dtype activations are cast to; None leaves them as they come (float32,
# or float64 where a test runs the model in float64).
COMPUTE_DTYPES = {"float32": None, "bfloat16": jnp.bfloat16}


def compute_dtype(name: str, field: str = "model.compute_dtype"):
  """The dtype the convolutions and matrix products run in, `None` for the inputs' own.

  Raises:
    ValueError: naming `field`, when `name` is not one of `COMPUTE_DTYPES`.
  """
  if name not in COMPUTE_DTYPES:
    raise ValueError(f"{field} is {name!r}; use one of {', '.join(COMPUTE_DTYPES)}.")
  return COMPUTE_DTYPES[name]


def at_least_float32(x: jax.Array) -> jax.Array:
  """`x` in float32, or in its own dtype when that is wider (float64 under x64)."""
  return x.astype(jnp.promote_types(x.dtype, jnp.float32))
