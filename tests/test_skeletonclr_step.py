"""Two pretraining steps of freqjax equal two steps of SkeletonCLR in PyTorch.

The PyTorch side (`helpers/torch_skeletonclr.py`) follows the reference code: momentum
update of the key encoder before the key forward, `torch.optim.SGD` with momentum and weight
decay, the keys written into a `(D, K)` queue after the logits. Its weights and queue are
converted into a freqjax train state, and both run two steps from the same two
already-augmented views per step (freqjax's augmentation off through `data.augment`):
dropout 0, no FreST, no text losses, a constant learning rate, momentum and weight decay
on, and a key encoder that starts apart from the query encoder (as the reference's, which
re-initialises the whole model after copying), so the EMA and the key forward are seen.

Compared: the losses, every query parameter, the momentum buffers, the key encoder, the
BatchNorm running statistics of both encoders, the queue and its pointer — in float64 on
both sides and in float32.
"""
import functools
import os
import subprocess
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import pretrain
from freqjax import optim, parallel
from freqjax.checkpoints import pytorch as convert
from freqjax.models import heads
from freqjax.pretraining import state as train_state
from freqjax.pretraining import step as train_step
from helpers import import_torch
from helpers import torch_skeletonclr
from helpers.torch_stgcn import random_state_dict

BATCH, FRAMES, QUEUE, FEATURES = 4, 16, 12, 16  # 2 steps move the queue pointer to 8
LR, MOMENTUM, WEIGHT_DECAY, EMA, TEMPERATURE = 0.1, 0.9, 0.01, 0.9, 0.2
QUANTITIES = ("loss", "params", "momentum", "key_params", "batch_stats", "key_batch_stats",
              "queue", "queue_ptr")
WORKER = os.path.join(os.path.dirname(__file__), "skeletonclr_worker.py")
# Largest `|freqjax − PyTorch| / max|PyTorch|` per quantity. float64: both sides compute
# the same sums in double precision (measured: <= 6e-13). float32: the encoder test's
# 2e-4 (test_stgcn), except for the gradients' products: the momentum buffers (the
# gradients plus weight decay) and the query parameters they move: where float32 rounding
# moves a ReLU input across zero the gradient jumps (test_stgcn's gradient test). On this
# encoder, with one random cotangent, float32 gradients of PyTorch and of freqjax alike
# differ from their float64 ones by up to 1-2 %; here freqjax's momentum buffers by 7e-3.
TOLERANCES = {"float64": dict.fromkeys(QUANTITIES, 1e-9),
              "float32": dict.fromkeys(QUANTITIES, 2e-4) | {"momentum": 2e-2, "params": 2e-3}}


def _config():
  config = pretrain.get_config("test")
  config.data.num_frames = FRAMES
  config.data.augment.enabled = False
  config.model.hidden_channels = 16  # the reference ST-GCN's widths
  config.model.hidden_dim = 256
  config.model.mlp_dim = FEATURES
  config.model.dropout = 0.0
  config.model.frest_blocks = ()
  config.fm.weight = 0.0
  config.harmonizer.weight = 0.0
  config.moco.queue_size = QUEUE
  config.moco.momentum = EMA
  config.moco.temperature = TEMPERATURE
  config.optim.batch_size = BATCH
  config.optim.base_lr = LR * 128 / BATCH  # the peak rate is scaled by batch / 128
  config.optim.schedule = "step"
  config.optim.decay_epochs = (250,)
  config.optim.warmup_epochs = 0.0
  config.optim.momentum = MOMENTUM
  config.optim.nesterov = False
  config.optim.weight_decay = WEIGHT_DECAY
  return config


def reference_start():
  """The reference's initial weights and queue (float32 values) and the four views."""
  rng = np.random.default_rng(0)
  query = random_state_dict(seed=0) | torch_skeletonclr.random_head_state(256, FEATURES, 1)
  key = random_state_dict(seed=2) | torch_skeletonclr.random_head_state(256, FEATURES, 3)
  queue = rng.normal(size=(FEATURES, QUEUE))
  queue = (queue / np.linalg.norm(queue, axis=0)).astype(np.float32)
  views = rng.normal(size=(2, 2, BATCH, 3, FRAMES, 25, 2)).astype(np.float32)  # step, q/k
  views[:, :, 1, :, :, :, 1] = 0  # a sample without a second person
  views[:, :, 2, :, 12:] = 0  # and one zero-padded at the end
  return query, key, queue, views


def _as_freqjax(stgcn_and_head: dict, encoder, dtype) -> tuple[dict, dict]:
  """`({"encoder", "mlp"} params, batch stats)` of a PyTorch-layout state dict."""
  variables = convert.stgcn_from_pytorch(stgcn_and_head, encoder, dtype=dtype)
  mlp = heads.mlp_head_params_from_torch(stgcn_and_head, prefix="fc", dtype=dtype)
  return {"encoder": variables["params"], "mlp": mlp}, variables["batch_stats"]


def torch_steps(start, dtype, encoder) -> dict:
  torch = import_torch()
  query, key, queue, views = start
  model = torch_skeletonclr.skeletonclr(query, key, queue, temperature=TEMPERATURE,
                                        momentum=EMA)
  model = model.double() if dtype == np.float64 else model
  optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                              weight_decay=WEIGHT_DECAY, nesterov=False)
  as_tensor = lambda a: torch.tensor(a.astype(dtype))
  losses = [torch_skeletonclr.train_step(model, optimizer, as_tensor(x_q), as_tensor(x_k))
            for x_q, x_k in views]

  def state_dict(encoder_module):
    stgcn = {k: v.numpy() for k, v in encoder_module.stgcn.state_dict().items()}
    return stgcn | {f"fc.{k}": v.numpy() for k, v in encoder_module.fc.state_dict().items()}

  query_state = state_dict(model.encoder_q)
  buffers = {}
  for prefix, module in (("", model.encoder_q.stgcn), ("fc.", model.encoder_q.fc)):
    for name, param in module.named_parameters():
      if param in optimizer.state:  # not the ST-GCN's unused classifier
        buffers[prefix + name] = optimizer.state[param]["momentum_buffer"].numpy()
  params, batch_stats = _as_freqjax(query_state, encoder, dtype)
  key_params, key_batch_stats = _as_freqjax(state_dict(model.encoder_k), encoder, dtype)
  return {"loss": np.asarray(losses), "params": params, "batch_stats": batch_stats,
          "momentum": _as_freqjax(query_state | buffers, encoder, dtype)[0],
          "key_params": key_params, "key_batch_stats": key_batch_stats,
          "queue": model.queue.numpy().T, "queue_ptr": int(model.queue_ptr)}


def freqjax_steps(start, dtype) -> dict:
  query, key, queue, views = start
  config = _config()
  nets = train_state.build_networks(config, bn_axis_name=None)
  tx = optim.sgd(config, steps_per_epoch=10)
  params, batch_stats = _as_freqjax(query, nets.encoder, dtype)
  key_params, key_batch_stats = _as_freqjax(key, nets.encoder, dtype)
  state = train_state.TrainState(
      step=jnp.int32(0), params=params, batch_stats=batch_stats, key_params=key_params,
      key_batch_stats=key_batch_stats, queue=jnp.asarray(queue.T, dtype),
      queue_ptr=jnp.int32(0), text_queue=jnp.zeros((1, 1), dtype), text_queue_ptr=jnp.int32(0),
      opt_state=tx.init(params), rng=jax.random.PRNGKey(0))
  dp = parallel.DataParallel("pmap", devices=tuple(jax.devices()[:1]))
  step = dp.compile(functools.partial(
      train_step.train_step, nets=train_state.build_networks(config, parallel.AXIS), tx=tx,
      schedule=optim.learning_rate(config, 10), config=config), donate_state=False)
  placed, losses = dp.put_state(state), []
  for x_q, x_k in views:
    placed, metrics = step(placed, dp.put_batch({"x": x_q[None].astype(dtype),
                                                  "x_key": x_k[None].astype(dtype)}))
    losses.append(np.asarray(metrics["loss"]).reshape(-1)[0])
  final = jax.device_get(dp.get_state(placed))
  traces = [s for s in jax.tree.leaves(final.opt_state,
                                       is_leaf=lambda s: isinstance(s, optax.TraceState))
            if isinstance(s, optax.TraceState)]
  assert len(traces) == 1
  return {"loss": np.asarray(losses), "params": final.params,
          "batch_stats": final.batch_stats, "momentum": traces[0].trace,
          "key_params": final.key_params, "key_batch_stats": final.key_batch_stats,
          "queue": final.queue, "queue_ptr": int(final.queue_ptr)}


def flatten(results: dict) -> dict[str, np.ndarray]:
  """`{"params/encoder/block0/...": array, ...}`: every compared array by a path name."""
  flat = {}
  for name in QUANTITIES:
    for path, leaf in jax.tree_util.tree_flatten_with_path(results[name])[0]:
      flat["/".join([name, *(str(getattr(k, "key", k)) for k in path)])] = np.asarray(leaf)
  return flat


def max_errors(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> dict[str, float]:
  """Per compared quantity, the largest `|got − want| / max|want|` over its arrays."""
  assert got.keys() == want.keys(), set(got) ^ set(want)
  errors = {}
  for path, value in want.items():
    quantity = path.split("/")[0]
    error = float(np.max(np.abs(np.asarray(got[path], np.float64) - value))
                  / max(np.max(np.abs(value)), 1e-30))
    errors[quantity] = max(errors.get(quantity, 0.0), error)
  return errors


def freqjax_float64() -> dict[str, np.ndarray]:
  """freqjax's side in float64, run by `skeletonclr_worker.py` in its own process."""
  with tempfile.TemporaryDirectory() as tmp:
    out = os.path.join(tmp, "float64.npz")
    subprocess.run([sys.executable, WORKER, out], check=True, timeout=1200)
    with np.load(out) as f:
      return {k: f[k] for k in f.files}


def compare(dtype) -> tuple[dict[str, float], dict, dict]:
  """Runs both sides in `dtype`; returns the max errors and both flattened results."""
  start = reference_start()
  encoder = train_state.build_networks(_config(), bn_axis_name=None).encoder
  if dtype == np.float64:
    got = freqjax_float64()
  else:
    got = flatten(freqjax_steps(start, dtype))
  want = flatten(torch_steps(start, dtype, encoder))
  return max_errors(got, want), got, want


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_two_steps_equal_pytorch_skeletonclr(dtype):
  import_torch()
  errors, got, want = compare(dtype)
  assert int(got["queue_ptr"]) == int(want["queue_ptr"]) == 2 * BATCH
  # The comparison is between moving numbers: the steps changed the state.
  start_queue = reference_start()[2].T
  assert np.abs(want["queue"][:2 * BATCH] - start_queue[:2 * BATCH]).max() > 0.1
  np.testing.assert_array_equal(want["queue"][2 * BATCH:], start_queue[2 * BATCH:])
  assert want["loss"][0] != want["loss"][1]
  tolerances = TOLERANCES[np.dtype(dtype).name]
  bad = {name: error for name, error in errors.items() if not error <= tolerances[name]}
  assert not bad, f"{np.dtype(dtype).name}: max relative errors above tolerance: {bad}"
