"""Runs a tiny pretraining run straight, and again killed twice and resumed; prints JSON.

`python tests/resume_worker.py DATA_DIR OUT_DIR`, in its own process so that XLA compiles
at its default optimisation level (the test suite lowers it; see conftest.py). DATA_DIR
holds `xperformer/` and `text.npz` (tests/helpers/pretrain_runs.py's `tiny_data`). Used
by test_pretrain.py.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from freqjax import xla_env  # noqa: E402

xla_env.configure()

import jax  # noqa: E402
import numpy as np  # noqa: E402

from configs import pretrain as pretrain_configs  # noqa: E402
from freqjax.data import pipeline  # noqa: E402
from freqjax.pretraining import loop  # noqa: E402

# Batches each attempt gets before the simulated kill (None: runs to the end). With a
# checkpoint every 2 steps the first attempt logs steps 1-5 and resumes from 4, the
# second logs 5-7 and resumes from 6.
ATTEMPTS = (5, 3, None)


def main(data: str, out: str) -> dict:
  config = pretrain_configs.get_config("test")
  config.data.path = os.path.join(data, "xperformer")
  config.text.path = os.path.join(data, "text.npz")
  config.optim.epochs = 1.0  # 8 steps of batch 8 on the 64+ training samples
  # Without the text losses the step compiles several times faster at the default level;
  # test_resume.py resumes the whole MICA step (at level 0) and compares it bit for bit.
  config.fm.weight = config.harmonizer.weight = 0.0
  straight = jax.device_get(loop.pretrain(config, os.path.join(out, "straight")))

  real_batches = pipeline.train_batches
  resumed_dir = os.path.join(out, "resumed")
  checkpoints, resumed = [], None
  for batches in ATTEMPTS:
    def killed(*args, batches=batches, **kwargs):
      for i, batch in enumerate(real_batches(*args, **kwargs)):
        if i == batches:
          raise KeyboardInterrupt("simulated kill")
        yield batch
    pipeline.train_batches = killed
    try:
      resumed = jax.device_get(loop.pretrain(config, resumed_dir))
    except KeyboardInterrupt:
      checkpoints.append(sorted(int(s) for s in os.listdir(
          os.path.join(resumed_dir, "checkpoints")) if s.isdigit()))
  with open(os.path.join(resumed_dir, "metrics.jsonl")) as f:
    steps = [json.loads(line)["step"] for line in f]
  return {
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "checkpoints_at_kills": checkpoints,
      "logged_steps": steps,
      "final_step": int(resumed.step),
      "straight_step": int(straight.step),
      "max_abs_difference": max(
          float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
          for a, b in zip(jax.tree.leaves(straight), jax.tree.leaves(resumed))),
  }


if __name__ == "__main__":
  print(json.dumps(main(*sys.argv[1:3])))
