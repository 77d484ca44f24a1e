"""Fine-tunes a tiny encoder on 1 and on 8 fake CPU devices and prints the results as JSON.

`python tests/finetune_worker.py` (the device count must be set before jax starts, hence a
separate process). Runs, in one process: one device (pmap), eight devices with pmap and
with shard_map, and a batch size the eight devices do not divide. Used by test_finetune.py.
"""
import json
import os
import sys

NUM_DEVICES = 8
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           f" --xla_force_host_platform_device_count={NUM_DEVICES}")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from freqjax import xla_env  # noqa: E402

xla_env.configure()

import functools  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import eval as eval_configs  # noqa: E402
from freqjax.evaluation import finetune  # noqa: E402
from freqjax.models import STGCN  # noqa: E402
from helpers.array_dataset import ArrayDataset  # noqa: E402  (this script's folder is on sys.path)

NUM_SAMPLES, NUM_FRAMES, NUM_CLASSES = 40, 16, 5


def setup():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(NUM_SAMPLES, 3, NUM_FRAMES, 25, 2)).astype(np.float32)
  x[:, :, 12:] = 0  # zero padding at the end of every sequence: the crop sees its length
  dataset = ArrayDataset(x, rng.integers(0, NUM_CLASSES, NUM_SAMPLES))
  # Dropout masks are per device (see finetune's docstring): off for a bitwise comparison.
  # model.init="flax": with the reference initialisation the 8- and 1-device losses of this
  # untrained 4-channel encoder drift apart by 2e-4 (relative) within the 4 steps, beyond
  # the float32 tolerance of the comparison (measured; flax init: within 1e-5).
  encoder = STGCN(hidden_channels=4, hidden_dim=16, dropout=0.0, frest_blocks=(9,),
                  init_scheme="flax")
  variables = jax.jit(functools.partial(encoder.init, train=False))(
      jax.random.PRNGKey(1), x[:2])
  config = eval_configs.get_config("finetune").finetune
  config.epochs = 2
  config.batch_size = 16  # 2 steps per epoch (8 samples dropped), 2 per device on 8
  config.decay_epochs = (1,)  # the second epoch runs at lr / 10
  # Batch statistics, so the comparison covers BatchNorm synchronised over the devices.
  config.encoder_mode = "train"
  return encoder, variables, dataset, config


def run(devices, backend: str) -> dict:
  encoder, variables, dataset, config = setup()
  result = finetune.train(encoder, variables, dataset, NUM_CLASSES, config, stream="bone",
                          seed=3, backend=backend, devices=devices, progress=False)
  final = {"encoder": result.encoder_variables, "fc": result.head_params}
  placement = sorted({str(d) for leaf in jax.tree.leaves(final) for d in leaf.devices()})
  leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(final))[0]
  return {"curve": result.curve, "num_steps": result.num_steps,
          "num_devices": result.num_devices, "placement": placement,
          "leaves": {jax.tree_util.keystr(p): np.asarray(v).tolist() for p, v in leaves}}


def indivisible_batch_error() -> str:
  encoder, variables, dataset, config = setup()
  config.batch_size = 12
  try:
    finetune.train(encoder, variables, dataset, NUM_CLASSES, config, stream="joint", seed=0,
                   progress=False)
  except ValueError as e:
    return str(e)
  return ""


if __name__ == "__main__":
  devices = jax.devices()
  assert len(devices) == NUM_DEVICES, devices
  print(json.dumps({"one": run(devices[:1], "pmap"), "pmap": run(devices, "pmap"),
                    "shard_map": run(devices, "shard_map"),
                    "indivisible_error": indivisible_batch_error()}))
