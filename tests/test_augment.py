"""Augmentation invariants and numpy references (SkeletonCLR/AimCLR `feeder/tools.py`)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import pretrain
from freqjax.data import augment
from freqjax.graph import NTU_RGBD

# NTU's left/right pairs (1-based), written out independently of augment.FLIP_ORDER.
LEFT_RIGHT = ((5, 9), (6, 10), (7, 11), (8, 12), (13, 17), (14, 18), (15, 19), (16, 20),
              (22, 24), (23, 25))


def _sample(seed=0, num_frames=12, valid=8, second_person=False):
  """(3, T, 25, 2): frames from `valid` on are zero; person 2 absent unless asked."""
  x = np.random.default_rng(seed).normal(size=(3, num_frames, 25, 2)).astype(np.float32)
  x[:, valid:] = 0
  if not second_person:
    x[..., 1] = 0
  return x


def _bone_lengths(x):
  parents = NTU_RGBD.parents
  return np.linalg.norm(x - x[:, :, parents], axis=0)


def test_temporal_crop_matches_reference_slice():
  x = _sample(num_frames=30, valid=30)
  pad = 30 // 6
  # The reference's padding: x[p-1..0] before, x[T-1..T-p] after.
  padded = np.concatenate([x[:, :pad][:, ::-1], x, x[:, -pad:][:, ::-1]], axis=1)
  for seed in range(6):
    key = jax.random.key(seed)
    out = np.asarray(augment.temporal_crop(key, x))
    start = int(jax.random.randint(key, (), 0, 2 * pad + 1))
    assert out.shape == x.shape
    np.testing.assert_array_equal(out, padded[:, start:start + 30])
  starts = {int(jax.random.randint(jax.random.key(s), (), 0, 2 * pad + 1)) for s in range(60)}
  assert starts == set(range(2 * pad + 1))  # every window position is reachable


def test_zero_shear_is_identity_and_shear_is_the_reference_product():
  x = _sample(second_person=True)
  np.testing.assert_array_equal(np.asarray(augment.shear(jax.random.key(0), x, 0.0)), x)
  key = jax.random.key(5)
  out = np.asarray(augment.shear(key, x))
  off = np.asarray(jax.random.uniform(key, (3, 3), jnp.float32, -0.5, 0.5))
  matrix = np.where(np.eye(3, dtype=bool), 1.0, off)
  assert np.all(np.abs(matrix - np.eye(3)) <= 0.5)
  np.testing.assert_allclose(out, np.einsum("ij,jtvm->itvm", matrix, x), atol=1e-5)


def test_flip_swaps_left_right_joints_and_twice_is_identity():
  x = _sample(second_person=True)
  order = np.arange(25)
  for left, right in LEFT_RIGHT:
    order[left - 1], order[right - 1] = right - 1, left - 1
  flipped = np.asarray(augment.random_flip(jax.random.key(0), x, p=1.0))
  np.testing.assert_array_equal(flipped, x[:, :, order])
  np.testing.assert_array_equal(
      np.asarray(augment.random_flip(jax.random.key(1), flipped, p=1.0)), x)
  np.testing.assert_array_equal(np.asarray(augment.random_flip(jax.random.key(0), x, 0.0)), x)


def test_rotation_preserves_bone_lengths_and_matches_reference_order():
  x = _sample(second_person=True)
  for seed in range(4):
    out = np.asarray(augment.random_rotate(jax.random.key(seed), x))
    np.testing.assert_allclose(_bone_lengths(out), _bone_lengths(x), rtol=1e-5, atol=1e-5)
    assert not np.allclose(out, x)
  # Reference: rotate about x, then y, then z, each `seq @ R.T` with AimCLR's matrices.
  a = np.deg2rad([10.0, 0.5, 0.3])
  c, s = np.cos(a), np.sin(a)
  r_x = np.array([[1, 0, 0], [0, c[0], s[0]], [0, -s[0], c[0]]])
  r_y = np.array([[c[1], 0, -s[1]], [0, 1, 0], [s[1], 0, c[1]]])
  r_z = np.array([[c[2], s[2], 0], [-s[2], c[2], 0], [0, 0, 1]])
  points = np.random.default_rng(0).normal(size=(7, 3))
  expected = points @ r_x.T @ r_y.T @ r_z.T
  got = points @ np.asarray(augment.rotation_matrix(jnp.asarray(a, jnp.float32))).T
  np.testing.assert_allclose(got, expected, atol=1e-6)


def test_rotation_angles_within_limits():
  # Recover the angles from the matrix of many draws: one axis up to 30°, others up to 1°.
  x = np.zeros((3, 1, 25, 1), np.float32)
  x[:, 0, :3, 0] = np.eye(3)  # the three unit vectors as joints: out = R
  angles = []
  for seed in range(20):
    matrix = np.asarray(augment.random_rotate(jax.random.key(seed), x))[:, 0, :3, 0]
    angles.append(np.degrees(np.arccos(np.clip((np.trace(matrix) - 1) / 2, -1, 1))))
  assert 0 < min(angles) and max(angles) <= 32  # composed angle <= 30° + 1° + 1°
  assert max(angles) > 10


def test_gaussian_blur_matches_reference_convolution():
  x = _sample(num_frames=20, valid=20, second_person=True)
  key = jax.random.key(4)
  out = np.asarray(augment.gaussian_blur(key, x, p=1.0))
  sigma = float(jax.random.uniform(jax.random.split(key)[1], (), jnp.float32, 0.1, 2.0))
  kernel = np.exp(-np.arange(-7, 8) ** 2 / (2 * sigma**2))
  expected = np.apply_along_axis(lambda s: np.convolve(s, kernel, mode="same"), 1, x)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
  normalised = np.asarray(augment.gaussian_blur(key, x, p=1.0, normalize=True))
  np.testing.assert_allclose(normalised, expected / kernel.sum(), rtol=1e-5, atol=1e-5)


def test_axis_mask_zeroes_exactly_one_axis():
  x = _sample(second_person=True)
  out = np.asarray(augment.axis_mask(jax.random.key(0), x, p=1.0))
  zeroed = [c for c in range(3) if not out[c].any()]
  assert len(zeroed) == 1
  kept = [c for c in range(3) if c not in zeroed]
  np.testing.assert_array_equal(out[kept], x[kept])


def test_noise_changes_present_frames_only():
  x = _sample(second_person=False)
  out = np.asarray(augment.gaussian_noise(jax.random.key(0), x, p=1.0))
  assert 0.005 < np.std(out[:, :8, :, 0] - x[:, :8, :, 0]) < 0.02


# One compilation each, shared by the tests below (compiling is most of their time on CPU).
_batch_normal = jax.jit(augment.batch_normal_view)
_batch_extreme = jax.jit(augment.batch_extreme_view)


def test_single_ops_keep_padding_and_absent_person_zero():
  x = _sample(num_frames=12, valid=8)
  always = {"p": 1.0}
  for op, kwargs in ((augment.shear, {}), (augment.random_rotate, {}),
                     (augment.gaussian_noise, always), (augment.gaussian_blur, always),
                     (augment.random_flip, always), (augment.axis_mask, always),
                     (augment.temporal_crop, {}), (augment.random_time_flip, always)):
    for seed in range(3):
      out = np.asarray(op(jax.random.key(seed), x, **kwargs))
      assert out.shape == x.shape
      np.testing.assert_array_equal(out[..., 1], 0, err_msg=op.__name__)
      if op is augment.random_time_flip:
        np.testing.assert_array_equal(out[:, :4], 0)  # the padding moved to the front
      elif op is augment.temporal_crop:
        # The crop pads 2 frames a side: a window never reaches past frame 10, so the last
        # frame stays padding; the reflect padding may bring zeros inside (reference).
        np.testing.assert_array_equal(out[:, -1], 0)
      else:
        np.testing.assert_array_equal(out[:, 8:], 0, err_msg=op.__name__)
        assert np.any(out[:, :8, :, 0] != 0)


def test_views_keep_padding_and_absent_person_zero():
  x = np.stack([_sample(seed, num_frames=12, valid=8) for seed in range(8)])
  for batch_view in (_batch_normal, _batch_extreme):
    out = np.asarray(batch_view(jax.random.key(0), x))
    assert out.shape == x.shape
    np.testing.assert_array_equal(out[..., 1], 0)
    np.testing.assert_array_equal(out[:, :, -1], 0)
  time_flipped = augment.extreme_view(jax.random.key(1), x[0], time_flip_prob=0.5)
  np.testing.assert_array_equal(np.asarray(time_flipped)[..., 1], 0)


def test_batch_views_jit_and_vmap_with_independent_keys():
  x = np.stack([_sample(seed, num_frames=12, valid=8) for seed in range(8)])
  x[1] = x[0]
  key = jax.random.key(0)
  keys = jax.random.split(key, 8)
  for batch_view, view in ((_batch_normal, augment.normal_view),
                           (_batch_extreme, augment.extreme_view)):
    out = np.asarray(batch_view(key, x))
    assert np.isfinite(out).all()
    assert not np.allclose(out[0], out[1])  # same input, different per-sample keys
    np.testing.assert_allclose(out[2], np.asarray(view(keys[2], x[2])), atol=1e-5)
  a = np.asarray(_batch_normal(jax.random.key(1), x))
  b = np.asarray(_batch_normal(jax.random.key(2), x))
  assert not np.allclose(a, b)  # different keys, different views


def _augment_section(**overrides):
  section = pretrain.get_config("test").data.augment
  section.update(overrides)
  return section


# Every step of the extreme view switched off, as the config writes it.
_ALL_OFF = {"padding_ratio": 0, "shear_amplitude": -1.0, "flip_prob": 0.0,
            "rotate_main_degrees": 0.0, "rotate_other_degrees": 0.0, "time_flip_prob": 0.0,
            "noise_prob": 0.0, "blur_prob": 0.0, "mask_prob": 0.0}


def test_negative_shear_amplitude_switches_shear_off():
  x = _sample(second_person=True)
  for amplitude in (-1.0, -0.5, 0.0):
    np.testing.assert_array_equal(np.asarray(augment.shear(jax.random.key(3), x, amplitude)), x)
  view = augment.view_from_config(_augment_section(padding_ratio=0, shear_amplitude=-1.0))
  np.testing.assert_array_equal(np.asarray(view(jax.random.key(3), x)), x)


def test_disabled_augmentation_is_the_input():
  x = _sample(second_person=True)
  section = _augment_section(enabled=False)
  for extreme in (False, True):
    view = augment.view_from_config(section, extreme=extreme)
    np.testing.assert_array_equal(np.asarray(view(jax.random.key(0), x)), x)


def test_defaults_are_the_views_of_the_functions():
  # The config's defaults give exactly the functions' defaults (today's views).
  x = _sample(num_frames=18, valid=14, second_person=True)
  key = jax.random.key(7)
  for extreme, view in ((False, augment.normal_view), (True, augment.extreme_view)):
    configured = augment.view_from_config(_augment_section(), extreme=extreme)
    np.testing.assert_array_equal(np.asarray(configured(key, x)), np.asarray(view(key, x)))


@pytest.mark.parametrize("field,on,op", [
    ("padding_ratio", 3, lambda k, x: augment.temporal_crop(k, x, 3)),
    ("shear_amplitude", 0.5, lambda k, x: augment.shear(k, x, 0.5)),
    ("flip_prob", 1.0, lambda k, x: augment.random_flip(k, x, 1.0)),
    ("rotate_main_degrees", 30.0, lambda k, x: augment.random_rotate(k, x, 30.0, 0.0)),
    ("rotate_other_degrees", 1.0, lambda k, x: augment.random_rotate(k, x, 0.0, 1.0)),
    ("time_flip_prob", 1.0, lambda k, x: augment.random_time_flip(k, x, 1.0)),
    ("noise_prob", 1.0, lambda k, x: augment.gaussian_noise(k, x, 0.01, 1.0)),
    ("blur_prob", 1.0, lambda k, x: augment.gaussian_blur(k, x, p=1.0)),
    ("mask_prob", 1.0, lambda k, x: augment.axis_mask(k, x, 1.0)),
])
def test_each_switch_controls_its_own_step(field, on, op):
  """With every step off the extreme view is the input; switching one on applies that step."""
  x = _sample(num_frames=12, valid=12, second_person=True)
  key = jax.random.key(11)
  off = augment.view_from_config(_augment_section(**_ALL_OFF), extreme=True)
  np.testing.assert_array_equal(np.asarray(off(key, x)), x)
  one = augment.view_from_config(_augment_section(**(_ALL_OFF | {field: on})), extreme=True)
  # extreme_view's keys: [normal view (crop, shear), flip, rotate, time flip, noise, blur, mask].
  keys = jax.random.split(key, 7)
  index = {"padding_ratio": 0, "shear_amplitude": 0, "flip_prob": 1, "rotate_main_degrees": 2,
           "rotate_other_degrees": 2, "time_flip_prob": 3, "noise_prob": 4, "blur_prob": 5,
           "mask_prob": 6}[field]
  step_key = keys[index]
  if field in ("padding_ratio", "shear_amplitude"):
    step_key = jax.random.split(step_key)[0 if field == "padding_ratio" else 1]
  expected = np.asarray(op(step_key, x))
  assert not np.array_equal(expected, x)
  np.testing.assert_allclose(np.asarray(one(key, x)), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("field,value", [
    ("flip_prob", 1.5), ("noise_prob", -0.1), ("blur_prob", 2), ("mask_prob", True),
    ("time_flip_prob", -1.0), ("padding_ratio", -6), ("padding_ratio", 2.5),
    ("rotate_main_degrees", -30.0), ("rotate_other_degrees", 400.0), ("noise_std", -0.01),
    ("blur_kernel_size", 14), ("blur_kernel_size", 0), ("blur_sigma_min", 0.0),
    ("enabled", "yes"), ("extreme_query", 1),
])
def test_invalid_settings_raise_naming_the_field(field, value):
  section = _augment_section()
  # Bypass ConfigDict's type check, as a config.json or a config file can.
  section = section.to_dict() | {field: value}
  with pytest.raises(ValueError, match=rf"^data\.augment\.{field} is "):
    augment.check_config(section)


def test_settings_check_accepts_the_configs_and_rejects_unknown_or_swapped_fields():
  from configs import eval as eval_configs  # pylint: disable=import-outside-toplevel
  augment.check_config(pretrain.get_config("ntu60_xsub_joint").data.augment)
  augment.check_config(eval_configs.get_config("finetune").finetune.augment, "finetune.augment")
  augment.check_config(_augment_section(shear_amplitude=-1.0, padding_ratio=0))
  with pytest.raises(ValueError, match=r"^finetune\.augment\.shear is not an augmentation"):
    augment.check_config({"shear": 0.5}, "finetune.augment")
  with pytest.raises(ValueError, match=r"^data\.augment\.blur_sigma_min 3\.0 is above"):
    augment.check_config(_augment_section(blur_sigma_min=3.0))


def test_present_only_off_lets_noise_and_blur_reach_the_padding():
  x = _sample(num_frames=20, valid=14)
  noisy = np.asarray(augment.gaussian_noise(jax.random.key(0), x, p=1.0, present_only=False))
  assert 0.005 < np.std(noisy[:, 14:]) < 0.02  # padding frames and the absent person too
  # Blur without the mask is the plain convolution, spreading into the padding (AimCLR's).
  key = jax.random.key(4)
  sigma = float(jax.random.uniform(jax.random.split(key)[1], (), jnp.float32, 0.1, 2.0))
  kernel = np.exp(-np.arange(-7, 8) ** 2 / (2 * sigma**2))
  expected = np.apply_along_axis(lambda s: np.convolve(s, kernel, mode="same"), 1, x)
  assert np.abs(expected[:, 14:, :, 0]).max() > 1e-2
  np.testing.assert_allclose(
      np.asarray(augment.gaussian_blur(key, x, p=1.0, present_only=False)), expected,
      rtol=1e-5, atol=1e-5)
  view = augment.view_from_config(_augment_section(**(_ALL_OFF | {"noise_prob": 1.0,
                                                                  "present_only": False})),
                                  extreme=True)
  assert np.abs(np.asarray(view(jax.random.key(1), x))[..., 1]).max() > 1e-4
