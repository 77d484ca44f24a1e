"""The field's T-frame transform against numpy references written here, and its invariants."""
import numpy as np
import pytest

from freqjax.data import transform


def direct_resize(x, length, frames):
  """Half-pixel linear interpolation, one output frame at a time, in float64."""
  out = np.zeros((x.shape[0], frames) + x.shape[2:])
  for d in range(frames):
    s = min(max((d + 0.5) * length / frames - 0.5, 0.0), length - 1.0)
    i = int(np.floor(s))
    j = min(i + 1, length - 1)
    out[:, d] = (1 - (s - i)) * x[:, i] + (s - i) * x[:, j]
  return out


def sequence(seed, length, persons=2, total=300, z_sign=1.0):
  """A (3, total, 25, 2) zero-padded sample whose shoulder vectors have z of `z_sign`.

  The shoulder vector (joint 9 - joint 5) makes an angle of 25-155 degrees with x, away
  from the axis where the reference's +1e-4 in the norm changes the angle noticeably.
  """
  rng = np.random.default_rng(seed)
  x = np.zeros((3, total, 25, 2), np.float32)
  for m in range(persons):
    joints = rng.normal(scale=0.3, size=(3, length, 25)) + np.array([0, 0, 3.0])[:, None, None]
    angle = rng.uniform(np.radians(25), np.radians(155), size=length)
    width = rng.uniform(0.3, 0.4, size=length)
    joints[:, :, 8] = joints[:, :, 4] + np.stack(
        [width * np.cos(angle), rng.normal(scale=0.05, size=length),
         z_sign * width * np.sin(angle)])
    x[:, :length, :, m] = joints
  return x


def test_pad_or_crop():
  x = np.arange(3 * 7 * 25 * 2, dtype=np.float64).reshape(3, 7, 25, 2)
  padded = transform.pad_or_crop(x, 10)
  assert padded.dtype == np.float32 and padded.shape == (3, 10, 25, 2)
  np.testing.assert_array_equal(padded[:, :7], x)
  assert not padded[:, 7:].any()
  long = np.arange(305, dtype=np.float64)[None, :, None, None] * np.ones((3, 1, 25, 2))
  cropped = transform.pad_or_crop(long)
  np.testing.assert_array_equal(cropped[0, :, 0, 0], np.arange(2, 302))  # middle 300


def test_valid_length_counts_frames_with_joint_1_of_person_1():
  x = sequence(0, 40)
  assert transform.valid_length(x) == 40
  x[:, 10, 0, 0] = 0  # a gap inside the sequence
  x[:, 50, 0, 1] = 1  # person 2 alone does not count
  assert transform.valid_length(x) == 39


def test_center_on_joint_21():
  x = sequence(1, 30)
  centred = transform.center_on_joint(x)
  expected = x.copy()
  for t in range(x.shape[1]):
    for m in range(2):
      expected[:, t, :, m] -= x[:, t, 20, m][:, None]
  np.testing.assert_allclose(centred, expected, atol=1e-6)
  assert not centred[:, :, 20].any()


@pytest.mark.parametrize("length, frames", [(87, 50), (20, 50), (300, 50), (50, 50),
                                            (1, 50), (133, 64), (7, 3)])
def test_resize_matches_the_half_pixel_formula(length, frames):
  x = np.random.default_rng(length).normal(size=(3, 300, 25, 2)).astype(np.float32)
  got = transform.resize_frames(x, length, frames)
  assert got.dtype == np.float32 and got.shape == (3, frames, 25, 2)
  np.testing.assert_allclose(got, direct_resize(x.astype(np.float64), length, frames),
                             rtol=0, atol=2e-6)
  if length == frames:
    np.testing.assert_array_equal(got, x[:, :length])


def test_resize_keeps_a_ramp_linear_inside():
  ramp = np.broadcast_to(np.arange(100, dtype=np.float32)[None, :, None, None], (3, 100, 25, 2))
  got = transform.resize_frames(ramp, 100, 50)[0, :, 0, 0]
  np.testing.assert_allclose(got, np.arange(50) * 2 + 0.5, atol=1e-5)  # centres of pairs


def angle_xz(v):
  return np.arctan2(v[2], v[0])


@pytest.mark.parametrize("z_sign", [1.0, -1.0])
def test_rotation_puts_a_consistent_shoulder_vector_on_plus_x(z_sign):
  x = sequence(2, 50, total=50, z_sign=z_sign)
  rotated = transform.rotate_to_shoulder_axis(x)
  shoulder = rotated[:, :, 8] - rotated[:, :, 4]  # (3, T, M)
  length = np.hypot(*(x[:, :, 8] - x[:, :, 4])[[0, 2]])
  np.testing.assert_allclose(shoulder[0], length, atol=1e-3)
  np.testing.assert_allclose(shoulder[2], 0, atol=1e-3)


def test_rotation_sign_is_chosen_once_per_sequence():
  x = sequence(3, 50, total=50, z_sign=1.0)
  x[2, 7, 8, 0] = x[2, 7, 4, 0] - 0.2  # frame 7 of person 1: shoulder z < 0, sum still > 0
  before = x[:, :, 8] - x[:, :, 4]
  rotated = transform.rotate_to_shoulder_axis(x)
  after = rotated[:, :, 8] - rotated[:, :, 4]
  # Frames agreeing with the sequence's sign end on +x; the disagreeing frame is turned
  # by the same angle the other way, ending at twice its angle from x.
  agree = np.ones((50, 2), bool)
  agree[7, 0] = False
  np.testing.assert_allclose(angle_xz(after)[agree], 0, atol=5e-3)
  twice = np.angle(np.exp(2j * angle_xz(before[:, 7, 0])))
  assert abs(np.angle(np.exp(1j * (angle_xz(after[:, 7, 0]) - twice)))) < 5e-3
  assert abs(angle_xz(after[:, 7, 0])) > 0.1


def test_rotation_is_a_rotation_about_y():
  x = sequence(4, 40, total=40)
  rotated = transform.rotate_to_shoulder_axis(x)
  np.testing.assert_array_equal(rotated[1], x[1])  # y untouched
  for t in (0, 17, 39):
    for m in (0, 1):
      d_before = np.linalg.norm(x[:, t, :, m][:, :, None] - x[:, t, :, m][:, None], axis=0)
      d_after = np.linalg.norm(rotated[:, t, :, m][:, :, None] - rotated[:, t, :, m][:, None],
                               axis=0)
      np.testing.assert_allclose(d_after, d_before, atol=1e-5)
      np.testing.assert_allclose(np.hypot(rotated[0, t, :, m], rotated[2, t, :, m]),
                                 np.hypot(x[0, t, :, m], x[2, t, :, m]), atol=1e-5)


def reference_transform(x, frames):
  """The pipeline re-derived: centre, resize the valid frames, rotate per frame."""
  x = x.astype(np.float64)
  length = int((np.abs(x[:, :, 0, 0]).sum(axis=0) != 0).sum())
  x = x - x[:, :, 20:21]
  x = direct_resize(x, length, frames)
  out = np.empty_like(x)
  for m in range(x.shape[-1]):
    v = x[:, :, 8, m] - x[:, :, 4, m]
    angle = np.arccos(v[0] / (np.hypot(v[0], v[2]) + 1e-4))
    angle = -angle if v[2].sum() >= 0 else angle
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    out[0, :, :, m] = c * x[0, :, :, m] - s * x[2, :, :, m]
    out[1, :, :, m] = x[1, :, :, m]
    out[2, :, :, m] = s * x[0, :, :, m] + c * x[2, :, :, m]
  return out


@pytest.mark.parametrize("length, frames, persons", [(120, 50, 2), (31, 50, 1), (300, 64, 2)])
def test_aimclr_transform_matches_the_reference(length, frames, persons):
  x = sequence(length, length, persons=persons)
  got = transform.aimclr_transform(x, frames)
  assert got.dtype == np.float32 and got.shape == (3, frames, 25, 2)
  np.testing.assert_allclose(got, reference_transform(x, frames), rtol=0, atol=1e-4)
  assert not got[:, :, 20].any()  # centred
  if persons == 1:
    assert not got[..., 1].any()  # an absent person stays zero


def test_aimclr_transform_without_valid_frame_raises():
  with pytest.raises(ValueError, match="no valid frame"):
    transform.aimclr_transform(np.zeros((3, 300, 25, 2), np.float32), 50)
