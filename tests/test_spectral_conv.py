"""The temporal convolution through the Fourier transform over frames equals the direct
one: checked in float64 against numpy loops (forward, input and weight gradients), for odd
and even transform lengths (the even ones have a bin N/2 counted once), and in the
encoder (test_kernels checks the CPU set, which uses it for wide layers, against the XLA
set); the rule that chooses it picks the encoder's wide blocks and nothing narrow or
bfloat16."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from freqjax.models.kernels import cpu as kernels_cpu
from freqjax.models.kernels.spectral_conv import is_cheaper, spectral_temporal_conv


def _numpy_conv(x, kernel):
  """`y[b, t, ..., o] = Σ_k Σ_i w[k, i, o] x[b, t + k − p, ..., i]`, zeros outside."""
  kernel_size, pad, frames = kernel.shape[0], (kernel.shape[0] - 1) // 2, x.shape[1]
  y = np.zeros(x.shape[:-1] + (kernel.shape[-1],))
  for t in range(frames):
    for k in range(kernel_size):
      if 0 <= t + k - pad < frames:
        y[:, t] += x[:, t + k - pad] @ kernel[k, 0]
  return y


def _numpy_gradients(x, kernel, g):
  """Gradients of `Σ y·g` with respect to `x` and `kernel`, by the same loops."""
  kernel_size, pad, frames = kernel.shape[0], (kernel.shape[0] - 1) // 2, x.shape[1]
  dx, dk = np.zeros_like(x), np.zeros_like(kernel)
  for t in range(frames):
    for k in range(kernel_size):
      s = t + k - pad
      if 0 <= s < frames:
        dx[:, s] += g[:, t] @ kernel[k, 0].T
        dk[k, 0] += x[:, s].reshape(-1, x.shape[-1]).T @ g[:, t].reshape(-1, g.shape[-1])
  return dx, dk


@pytest.mark.parametrize("shape, kernel_size", [
    ((3, 13, 4, 5, 7), 9),   # N = 21, odd
    ((3, 12, 4, 5, 7), 9),   # N = 20, even: bin 10 is counted once
    ((2, 6, 3, 4, 4), 3),    # N = 8
    ((2, 1, 3, 4, 4), 9),    # one frame: only the middle tap reaches it
    ((2, 5, 3, 2, 4, 6), 5),  # two row axes between frames and channels
])
def test_equals_the_direct_convolution_in_float64(shape, kernel_size):
  *x_shape, c_out = shape
  rng = np.random.default_rng(sum(shape))
  x = rng.normal(size=x_shape)
  kernel = rng.normal(size=(kernel_size, 1, x_shape[-1], c_out))
  g = rng.normal(size=(*x_shape[:-1], c_out))
  with jax.enable_x64(True):
    y, vjp = jax.vjp(spectral_temporal_conv, jnp.asarray(x), jnp.asarray(kernel))
    dx, dk = vjp(jnp.asarray(g))
  assert y.dtype == jnp.float64
  want_dx, want_dk = _numpy_gradients(x, kernel, g)
  np.testing.assert_allclose(y, _numpy_conv(x, kernel), rtol=1e-11, atol=1e-11)
  np.testing.assert_allclose(dx, want_dx, rtol=1e-11, atol=1e-11)
  np.testing.assert_allclose(dk, want_dk, rtol=1e-11, atol=1e-11)


def test_float32_error_is_rounding():
  """At block 9's shape (batch cut to 2), float32 against float64 numpy: the error is a
  few float32 ulps of the output's scale, as a direct convolution's."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 13, 25, 256))
  kernel = rng.normal(size=(9, 1, 256, 256)) / np.sqrt(9 * 256)
  want = _numpy_conv(x, kernel)
  got = np.asarray(spectral_temporal_conv(jnp.asarray(x, jnp.float32),
                                          jnp.asarray(kernel, jnp.float32)))
  assert got.dtype == np.float32
  assert np.abs(got - want).max() < 1e-5 * np.abs(want).max()


@pytest.mark.parametrize("frames, c_in, c_out, dtype, chosen", [
    (13, 256, 256, jnp.float32, True),    # block 9 at T = 50
    (13, 128, 128, jnp.float32, True),
    (13, 64, 64, jnp.float32, False),     # block 8: too narrow to pay for the transforms
    (13, 256, 256, jnp.float64, True),
    (13, 256, 256, jnp.bfloat16, False),  # the transforms would round in bfloat16
    (25, 32, 32, jnp.float32, False),     # blocks 5-6: too narrow to pay
    (50, 16, 16, jnp.float32, False),     # blocks 0-3
    (400, 64, 64, jnp.float32, False),    # long sequences: the transforms grow as T²
])
def test_the_rule_picks_the_wide_blocks(frames, c_in, c_out, dtype, chosen):
  assert is_cheaper(frames, 9, c_in, c_out, dtype) is chosen
  assert not is_cheaper(frames, 1, c_in, c_out, dtype)
  assert not is_cheaper(frames, 8, c_in, c_out, dtype)  # 'same' needs an odd kernel


def test_cpu_kernels_use_it_where_the_rule_says():
  """The CPU set's temporal convolution at block 9's shape compiles to no convolution
  (the per-bin products are dots), and to one at block 0's."""
  def convolutions(shape):
    x = jnp.zeros(shape, jnp.float32)
    kernel = jnp.zeros((9, 1, shape[-1], shape[-1]), jnp.float32)
    fn = lambda x, k: kernels_cpu.temporal_conv(x, k, jnp.zeros(shape[-1]), 1)
    return jax.jit(fn).lower(x, kernel).compile().as_text().count(" convolution(")

  assert convolutions((2, 13, 25, 256)) == 0
  assert convolutions((2, 50, 25, 16)) > 0
