"""One process of a multi-process test run (test_multihost.py starts one per process).

  python tests/helpers/multihost_worker.py RECORD_DIR pretrain [train.py flags...]
  python tests/helpers/multihost_worker.py RECORD_DIR finetune BACKEND

The launcher's environment says how many processes there are (`JAX_COORDINATOR_ADDRESS`,
`JAX_NUM_PROCESSES`, `JAX_PROCESS_ID`, or none for one process) and how many CPU devices
each has (`--xla_force_host_platform_device_count` in `XLA_FLAGS`). `pretrain` runs
`train.py`'s own `main`; `finetune` fine-tunes a tiny encoder (`finetune.train`, the setup
of tests/finetune_worker.py) and writes `finetune_<process>.json` (curve, final weights).
Both write `indices_<process>.npy`: `(batches, host_batch)` the dataset rows of every
batch the pipeline built in this process, in order.
"""
import faulthandler
import functools
import json
import os
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))
from freqjax import xla_env  # noqa: E402

xla_env.configure()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from freqjax.data import pipeline  # noqa: E402


def record_batches(seen: list) -> None:
  """Makes `pipeline.train_batches` append each batch's rows to `seen`."""
  real = pipeline.train_batches

  def recording(*args, **kwargs):
    for batch in real(*args, **kwargs):
      seen.append(batch["index"].reshape(-1).copy())
      yield batch

  pipeline.train_batches = recording


def pretrain(args: list[str]) -> int:
  import train  # noqa: PLC0415  (defines train.py's flags; jax.distributed starts in main)
  from freqjax import absl_cli  # noqa: PLC0415
  sys.argv = ["train.py", *args]
  return absl_cli.run(train.main, "train.py")


def finetune(record_dir: str, backend: str) -> int:
  from freqjax import parallel  # noqa: PLC0415
  parallel.initialize_if_requested()
  from configs import eval as eval_configs  # noqa: PLC0415
  from freqjax.evaluation import finetune as finetune_lib  # noqa: PLC0415
  from freqjax.models import STGCN  # noqa: PLC0415
  from helpers.array_dataset import ArrayDataset  # noqa: PLC0415

  rng = np.random.default_rng(0)
  x = rng.normal(size=(40, 3, 16, 25, 2)).astype(np.float32)
  x[:, :, 12:] = 0
  dataset = ArrayDataset(x, rng.integers(0, 5, 40))
  encoder = STGCN(hidden_channels=4, hidden_dim=16, dropout=0.0, frest_blocks=(9,))
  variables = jax.jit(functools.partial(encoder.init, train=False))(
      jax.random.PRNGKey(1), x[:2])
  config = eval_configs.get_config("finetune").finetune
  config.epochs = 2
  config.batch_size = 16  # 2 steps per epoch, 2 samples per device on 8 devices
  config.decay_epochs = (1,)
  result = finetune_lib.train(encoder, variables, dataset, 5, config, stream="bone", seed=3,
                              backend=backend, progress=False)
  final = jax.device_get({"encoder": result.encoder_variables, "fc": result.head_params})
  leaves = jax.tree_util.tree_flatten_with_path(final)[0]
  with open(os.path.join(record_dir, f"finetune_{jax.process_index()}.json"), "w") as f:
    json.dump({"curve": result.curve, "num_devices": result.num_devices,
               "leaves": {jax.tree_util.keystr(p): np.asarray(v).tolist() for p, v in leaves}},
              f)
  return 0


def main() -> int:
  # The test sends SIGUSR1 before killing a process that hangs: every thread's stack.
  faulthandler.register(signal.SIGUSR1, all_threads=True)
  record_dir, mode = sys.argv[1], sys.argv[2]
  seen = []
  record_batches(seen)
  try:  # absl's app.run ends with sys.exit
    return (pretrain(sys.argv[3:]) if mode == "pretrain" else
            finetune(record_dir, sys.argv[3]))
  finally:
    if seen:
      np.save(os.path.join(record_dir, f"indices_{jax.process_index()}.npy"), np.stack(seen))


if __name__ == "__main__":
  sys.exit(main())
