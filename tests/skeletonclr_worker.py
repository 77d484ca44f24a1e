"""Runs freqjax's side of test_skeletonclr_step.py in float64 and saves it as `.npz`.

`python tests/skeletonclr_worker.py OUT.npz`. A separate process, to turn on x64 before
jax starts and to compile at XLA's default optimisation level: the tests' level 0
(conftest.py) leaves float64 convolutions as unoptimised loops, minutes instead of seconds.
"""
import os
import sys

os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "").replace(
    "--xla_backend_optimization_level=0", "")
os.environ["JAX_ENABLE_X64"] = "1"
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from freqjax import xla_env  # noqa: E402

xla_env.configure()

import numpy as np  # noqa: E402

import test_skeletonclr_step as comparison  # noqa: E402

if __name__ == "__main__":
  results = comparison.flatten(comparison.freqjax_steps(comparison.reference_start(),
                                                        np.float64))
  np.savez(sys.argv[1], **results)
