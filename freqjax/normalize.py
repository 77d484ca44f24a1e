"""`l2_normalize`, the one row normalisation used by the losses, heads, probes and text tables."""
import jax.numpy as jnp
import numpy as np


def l2_normalize(x, axis: int = -1, eps: float = 1e-12):
  """`x / max(||x||_2, eps)` along `axis`, as PyTorch `F.normalize` (a zero vector stays zero).

  numpy in, numpy out (host code such as the text tables); anything else runs in jax.
  """
  xp = np if isinstance(x, np.ndarray) else jnp
  norm = xp.sqrt(xp.sum(xp.square(x), axis=axis, keepdims=True))
  return x / xp.maximum(norm, eps)
