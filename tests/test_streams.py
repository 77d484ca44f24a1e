"""Bone and motion streams against numpy loops over the 1-based bone pairs.

The pairs: docs/method.md, "Data layout and streams".
"""
import jax
import numpy as np
import pytest

from freqjax.data import streams

# The pairs of docs/method.md, written out again so the test does not reuse freqjax.graph's
# table.
BONES = ((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21), (10, 9),
         (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1), (18, 17),
         (19, 18), (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12))


def _joints(seed=0, shape=(2, 3, 6, 25, 2)):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_bone_matches_loop_over_pairs():
  x = _joints()
  expected = np.zeros_like(x)
  for joint, parent in BONES:
    expected[..., joint - 1, :] = x[..., joint - 1, :] - x[..., parent - 1, :]
  np.testing.assert_array_equal(np.asarray(streams.bone(x)), expected)
  np.testing.assert_array_equal(np.asarray(streams.bone(x))[..., 20, :], 0)


def test_motion_matches_loop_and_last_frame_is_zero():
  x = _joints(1, (3, 5, 25, 2))  # one sample, no batch axis
  expected = np.zeros_like(x)
  for t in range(x.shape[1] - 1):
    expected[:, t] = x[:, t + 1] - x[:, t]
  out = np.asarray(streams.motion(x))
  np.testing.assert_array_equal(out, expected)
  np.testing.assert_array_equal(out[:, -1], 0)


def test_to_stream_selects_and_jits():
  x = _joints(2)
  for name, fn in (("bone", streams.bone), ("motion", streams.motion)):
    jitted = jax.jit(streams.to_stream, static_argnums=1)(x, name)
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(fn(x)))
  np.testing.assert_array_equal(np.asarray(streams.to_stream(x, "joint")), x)


def test_unknown_stream_and_wrong_joint_count():
  with pytest.raises(ValueError, match="Unknown stream 'velocity'.*joint, bone, motion"):
    streams.to_stream(_joints(), "velocity")
  with pytest.raises(ValueError, match="25 NTU joints"):
    streams.bone(np.zeros((3, 4, 17, 2), np.float32))
