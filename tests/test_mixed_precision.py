"""bfloat16 compute (`model.compute_dtype`): what runs in bfloat16, what stays float32, and
one real pretraining step against the same step in float32."""
import functools
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import pretrain
from freqjax import optim, parallel
from freqjax.pretraining import state as train_state
from freqjax.pretraining import step as train_step

# Measured on the test config's step below: relative loss difference 7e-6 (kernels cpu) /
# 3e-4 (xla), cosine of the parameter updates 0.9985 / 0.9981 (2026-12-01). The bounds
# leave room for other seeds and batches.
MAX_RELATIVE_LOSS_DIFFERENCE = 1e-2
MIN_UPDATE_COSINE = 0.99


def _config(compute_dtype, kernels="auto"):
  config = pretrain.get_config("test")
  config.model.compute_dtype = compute_dtype
  config.model.kernels = kernels
  config.model.dropout = 0.0
  config.optim.warmup_epochs = 0.0  # the first step trains at the peak rate
  config.optim.weight_decay = 0.0  # the update is then −lr · gradient
  return config


def _batch(config):
  rng = np.random.default_rng(1)
  b = config.optim.batch_size
  z = rng.normal(size=(b, config.fm.dim)).astype(np.float32)
  return {"x": rng.normal(size=(b, 3, config.data.num_frames, 25, 2)).astype(np.float32),
          "text_embedding": z / np.linalg.norm(z, axis=1, keepdims=True),
          "word_features": rng.normal(size=(b, 4, 32)).astype(np.float32),
          "word_mask": np.ones((b, 4), bool)}


def _step(config, batch):
  """`(state before, state after, metrics, the step's jaxpr as text)` of one real step
  (`DataParallel("shard_map")` on one device)."""
  dp = parallel.DataParallel("shard_map", devices=tuple(jax.devices()[:1]))
  tx = optim.sgd(config, steps_per_epoch=10)
  init = jax.jit(functools.partial(train_state.create_train_state, config,
                                   train_state.build_networks(config, None), tx))
  state = init(jnp.asarray(batch["x"][:2]), jnp.asarray(batch["word_features"][:2]))
  fn = dp.compile(functools.partial(
      train_step.train_step, nets=train_state.build_networks(config, parallel.AXIS), tx=tx,
      schedule=optim.learning_rate(config, 10), config=config), donate_state=False)
  placed, device_batch = dp.put_state(state), dp.put_batch({k: v[None] for k, v in batch.items()})
  jaxpr = str(jax.make_jaxpr(fn)(placed, device_batch))
  new, metrics = fn(placed, device_batch)
  return jax.device_get(state), jax.device_get(new), jax.device_get(metrics), jaxpr


@pytest.fixture(scope="module")
def steps():
  batch = _batch(_config("float32"))
  return {dtype: _step(_config(dtype), batch) for dtype in ("float32", "bfloat16")}


def _outputs_by_primitive(jaxpr: str) -> dict[str, set[str]]:
  """`{primitive: dtypes of its first output}` over every equation, nested ones included."""
  found = {}
  # `x:f32[4,8]{V:data} = dot_general ...`: the `{V:...}` of device-varying values optional.
  for dtype, primitive in re.findall(r"\b\w+:(\w+)\[[^\]]*\](?:\{[^}]*\})? = (\w+)", jaxpr):
    found.setdefault(primitive, set()).add(dtype)
  return found


def test_bfloat16_step_agrees_with_float32(steps):
  before, after32, metrics32, _ = steps["float32"]
  _, after16, metrics16, _ = steps["bfloat16"]
  loss32, loss16 = float(metrics32["loss"]), float(metrics16["loss"])
  assert abs(loss16 - loss32) / abs(loss32) < MAX_RELATIVE_LOSS_DIFFERENCE
  flat = lambda tree: np.concatenate([np.ravel(a) for a in jax.tree.leaves(tree)])
  # The first SGD step without weight decay moves the parameters by −lr · gradient.
  update32 = flat(after32.params) - flat(before.params)
  update16 = flat(after16.params) - flat(before.params)
  cosine = update16 @ update32 / (np.linalg.norm(update16) * np.linalg.norm(update32))
  assert cosine > MIN_UPDATE_COSINE
  assert np.linalg.norm(update32) > 0


def test_bfloat16_keeps_state_and_losses_in_float32(steps):
  _, after16, metrics16, jaxpr = steps["bfloat16"]
  for name in ("params", "opt_state", "batch_stats", "key_params", "key_batch_stats",
               "queue", "text_queue"):
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(getattr(after16, name))
              if jnp.issubdtype(leaf.dtype, jnp.floating)}
    assert dtypes == {np.dtype(np.float32)}, name
  assert all(np.asarray(v).dtype == np.float32 for v in jax.tree.leaves(metrics16))
  outputs = _outputs_by_primitive(jaxpr)
  # Convolutions and matrix products run in bfloat16 ...
  assert "bf16" in outputs["conv_general_dilated"]
  assert "bf16" in outputs["dot_general"]
  # ... FreST's FFTs, and every exp / log (softmax, KL, InfoNCE) and normalisation
  # (BatchNorm, LayerNorm, L2) in float32.
  assert outputs["fft"] == {"c64", "f32"}  # rfft, irfft
  for primitive in ("exp", "log", "rsqrt", "sqrt", "log_softmax"):
    assert "bf16" not in outputs.get(primitive, set()), primitive


def test_float32_step_has_no_bfloat16(steps):
  """The default changes nothing: no bfloat16 anywhere in the float32 step."""
  jaxpr = steps["float32"][3]
  assert "bf16" not in jaxpr
