"""Runs a few MICA train steps on N fake CPU devices and prints the result as JSON.

`python tests/parallel_worker.py NUM_DEVICES BACKEND` (the device count must be set before
jax starts, hence a separate process). Used by test_train_step.py.
"""
import json
import os
import sys

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           f" --xla_force_host_platform_device_count={sys.argv[1]}")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from freqjax import xla_env  # noqa: E402

xla_env.configure()

import functools  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import pretrain  # noqa: E402
from freqjax import optim, parallel  # noqa: E402
from freqjax.pretraining import state as train_state  # noqa: E402
from freqjax.pretraining import step as train_step  # noqa: E402


def run(num_devices: int, backend: str, steps: int = 3) -> dict:
  config = pretrain.get_config("test")
  config.model.dropout = 0.0  # dropout masks are per device (see train_step's docstring)
  config.parallel.backend = backend
  dp = parallel.DataParallel(backend)
  assert dp.num_devices == num_devices, (dp.num_devices, num_devices)
  b = config.optim.batch_size
  rng = np.random.default_rng(0)
  x = rng.normal(size=(steps, b, 3, 16, 25, 2)).astype(np.float32)
  x[:, :, :, 12:] = 0  # zero padding at the end of every sequence
  text = rng.normal(size=(steps, b, 512)).astype(np.float32)
  text /= np.linalg.norm(text, axis=-1, keepdims=True)
  words = rng.normal(size=(steps, b, 5, 32)).astype(np.float32)
  mask = np.arange(5)[None, None, :] < rng.integers(1, 6, size=(steps, b, 1))

  tx = optim.sgd(config, steps_per_epoch=10)
  init_nets = train_state.build_networks(config, bn_axis_name=None)
  state = jax.jit(functools.partial(train_state.create_train_state, config, init_nets, tx))(
      x[0, :2], words[0, :2])
  fn = dp.compile(functools.partial(
      train_step.train_step, nets=train_state.build_networks(config, parallel.AXIS), tx=tx,
      schedule=optim.learning_rate(config, 10), config=config))
  state = dp.put_state(state)
  losses = []
  for s in range(steps):
    batch = {"x": x[s], "text_embedding": text[s], "word_features": words[s],
             "word_mask": mask[s]}
    batch = {k: v.reshape(num_devices, b // num_devices, *v.shape[1:]) for k, v in batch.items()}
    state, metrics = fn(state, dp.put_batch(batch))
    losses.append({k: float(np.asarray(v).reshape(-1)[0]) for k, v in metrics.items()})
  final = jax.device_get(dp.get_state(state))
  leaves = jax.tree_util.tree_flatten_with_path(
      {"params": final.params, "batch_stats": final.batch_stats, "key": final.key_params,
       "key_stats": final.key_batch_stats, "queue": final.queue,
       "text_queue": final.text_queue})[0]
  return {"metrics": losses, "queue_ptr": int(final.queue_ptr),
          "xla_flags": os.environ["XLA_FLAGS"],
          "leaves": {jax.tree_util.keystr(p): np.asarray(v).tolist() for p, v in leaves}}


if __name__ == "__main__":
  print(json.dumps(run(int(sys.argv[1]), sys.argv[2])))
