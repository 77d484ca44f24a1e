"""Sums over the rows of channels-last feature maps, written as matrix products.

XLA:CPU rewrites a large `jnp.sum` over the leading axes of a `(B, T, V, C)` map into a
windowed reduction that strides over C; it runs several times slower than the same sum
as a vector-matrix product with a vector of ones. Such sums are everywhere in training:
batch statistics, and the gradient of every bias, scale and pooled mean. These helpers
compute them as products, with hand-written gradients where autodiff would create a
reduction.
"""
import jax
import jax.numpy as jnp

# Float32 accumulation on every backend (TPUs would otherwise multiply in bfloat16).
_EXACT = jax.lax.Precision.HIGHEST


def column_sums(x: jax.Array) -> jax.Array:
  """`(rows, C)` → `(C,)`: the sum over rows."""
  return jnp.dot(jnp.ones((x.shape[0],), x.dtype), x, precision=_EXACT)


def mean_over_middle(x: jax.Array) -> jax.Array:
  """`(N, R, C)` → `(N, C)`: the mean over the R rows of each of the N groups."""
  ones = jnp.ones(x.shape[:2], x.dtype)
  return jnp.einsum("nrc,nr->nc", x, ones, precision=_EXACT) / x.shape[1]


@jax.custom_vjp
def add_bias(x: jax.Array, bias: jax.Array) -> jax.Array:
  """`x + bias`, `bias` broadcast over the leading axes of `x`; its gradient (the sum of
  the output gradient over those axes) is a `column_sums`."""
  return x + bias


def _add_bias_forward(x, bias):
  return x + bias, bias


def _add_bias_backward(bias, dy):
  return dy, column_sums(dy.reshape(-1, bias.size)).reshape(bias.shape)


add_bias.defvjp(_add_bias_forward, _add_bias_backward)
