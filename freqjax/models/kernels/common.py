"""Arithmetic both kernel sets share."""
import jax

# Float32 accumulation on every backend (TPUs would otherwise multiply in bfloat16).
EXACT = jax.lax.Precision.HIGHEST


def effective_filter(mask: jax.Array, w_global: jax.Array, w_local: jax.Array,
                     ndim: int) -> tuple[jax.Array, jax.Array]:
  """The complex weight `W_g + M ⊙ W_l` at every entry, as real and imaginary parts.

  Args:
    mask: `(B, L_f, ..., 1)` the 0/1 high-energy mask.
    w_global, w_local: real/imaginary pairs, `(C, 2)` or `(L_f, C, 2)`.
    ndim: rank of the `(B, L_f, ..., C)` parts the weights multiply.

  Returns:
    `(w_re, w_im)`, broadcastable against the parts.
  """
  g, l = (broadcastable(w, ndim) for w in (w_global, w_local))
  return g[..., 0] + mask * l[..., 0], g[..., 1] + mask * l[..., 1]


def broadcastable(w: jax.Array, ndim: int) -> jax.Array:
  """`(C, 2)` or `(L_f, C, 2)` pairs broadcastable against `(B, L_f, ..., C)` parts."""
  if w.ndim == 3:  # per frequency: (L_f, 1, ..., 1, C, 2)
    w = w.reshape(w.shape[0], *([1] * (ndim - 3)), *w.shape[1:])
  return w

