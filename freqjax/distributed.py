"""Multi-host start-up: `jax.distributed.initialize()` when the environment asks for it."""
import logging
import os
from typing import Mapping

import jax


def wants_multiple_processes(env: Mapping[str, str]) -> bool:
  """True under a multi-process launcher: JAX's coordinator variable, a SLURM or Open MPI
  job of several tasks, or a multi-worker Cloud TPU slice."""
  if env.get("JAX_COORDINATOR_ADDRESS"):
    return True
  if any(int(env.get(var, "1") or 1) > 1 for var in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")):
    return True
  return "," in env.get("TPU_WORKER_HOSTNAMES", "")


def initialize_if_requested() -> None:
  if wants_multiple_processes(os.environ):
    jax.distributed.initialize()
    logging.info("jax.distributed: process %d of %d, %d devices in all.",
                 jax.process_index(), jax.process_count(), jax.device_count())
