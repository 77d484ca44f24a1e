"""The joint, bone and motion input streams, computed on device from joints.

docs/method.md, "Data layout and streams".

All functions take `x (..., C=3, T, V=25, M)` (any leading batch axes; xyz, frames, NTU
joints, persons) and return the same shape.
"""
import jax
import jax.numpy as jnp
import numpy as np

from freqjax import graph

STREAMS = ("joint", "bone", "motion")


def bone(x: jax.Array) -> jax.Array:
  """`x[v] - x[parent(v)]` with NTU's parents; the centre joint (21) gets zero."""
  parents = np.asarray(graph.NTU_RGBD.parents)
  if x.shape[-2] != len(parents):
    raise ValueError(f"The bone stream needs {len(parents)} NTU joints on axis -2; "
                     f"got shape {x.shape}.")
  return x - jnp.take(x, parents, axis=-2)


def motion(x: jax.Array) -> jax.Array:
  """`x[t + 1] - x[t]` along T (axis -3); the last frame is zero."""
  difference = x[..., 1:, :, :] - x[..., :-1, :, :]
  return jnp.concatenate([difference, jnp.zeros_like(x[..., :1, :, :])], axis=-3)


def to_stream(x: jax.Array, name: str) -> jax.Array:
  """The `name` stream (`joint`, `bone` or `motion`, i.e. `data.stream`) of joints `x`."""
  if name == "joint":
    return x
  if name == "bone":
    return bone(x)
  if name == "motion":
    return motion(x)
  raise ValueError(f"Unknown stream {name!r} (data.stream): use one of {', '.join(STREAMS)}.")
