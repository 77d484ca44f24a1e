"""Data parallelism: the device axis, the compiled per-device step, multi-host start-up.

A step is written once, per device, and talks to the other devices only by named-axis
collectives over `AXIS`. `DataParallel` compiles it with `jax.pmap` (the default) or with
`jax.jit(jax.shard_map(...))` over a 1-D `data` mesh, and moves states and batches to the
devices. Per-sample randomness is drawn from `row_keys`: one key per GLOBAL row, so N
devices with a global batch B give the same numbers as one device with batch B.
"""
import dataclasses
import functools
import logging
import os
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

AXIS = "data"


def global_rows(local_batch: int) -> jax.Array:
  """`(local_batch,)` global row index of each of this device's rows (inside a step)."""
  return jax.lax.axis_index(AXIS) * local_batch + jnp.arange(local_batch)


def row_keys(key: jax.Array, rows: jax.Array) -> jax.Array:
  """`(n, 2)` one key per global row: `fold_in(key, rows[i])`."""
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(rows)

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


@dataclasses.dataclass(frozen=True)
class DataParallel:
  """Compiles a per-device step and places states and batches for one backend.

  Attributes:
    backend: "pmap" (the state carries a leading device axis) or "shard_map"
      (`jax.jit` of `jax.shard_map` over a 1-D mesh; the state is one replicated array).
    devices: the devices of the data axis (default: all).
  """
  backend: str = "pmap"
  devices: tuple = ()

  def __post_init__(self):
    if self.backend not in ("pmap", "shard_map"):
      raise ValueError(f"parallel.backend is {self.backend!r}; use pmap or shard_map.")
    if not self.devices:
      object.__setattr__(self, "devices", tuple(jax.devices()))

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @property
  def num_local_devices(self) -> int:
    return sum(d.process_index == jax.process_index() for d in self.devices)

  @functools.cached_property
  def mesh(self) -> jax.sharding.Mesh:
    return jax.sharding.Mesh(np.asarray(self.devices), (AXIS,))

  def compile(self, per_device_fn, donate_state: bool = True):
    """`fn(state, batch) -> (state, metrics)` running `per_device_fn` on every device."""
    donate = (0,) if donate_state else ()
    if self.backend == "pmap":
      return jax.pmap(per_device_fn, axis_name=AXIS, devices=self.devices,
                      donate_argnums=donate)
    # Every output is equal on all devices (pmean'd or all_gather'ed), but the type system
    # counts all_gather results as device-varying, so the replication check is off.
    sharded = jax.shard_map(per_device_fn, mesh=self.mesh, in_specs=(P(), P(AXIS)),
                            out_specs=(P(), P()), check_vma=False)
    return jax.jit(sharded, donate_argnums=donate)

  @functools.cached_property
  def _local_stack(self) -> NamedSharding:
    """pmap's layout: a leading axis over this host's devices, one slice per device."""
    local = [d for d in self.devices if d.process_index == jax.process_index()]
    return NamedSharding(jax.sharding.Mesh(np.asarray(local), (AXIS,)), P(AXIS))

  def put_state(self, state):
    """Host (or single-device) state → replicated over the data axis."""
    if self.backend == "pmap":
      n = self.num_local_devices
      return jax.tree.map(lambda x: jax.device_put(
          np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), self._local_stack), state)
    return jax.device_put(state, NamedSharding(self.mesh, P()))

  def get_state(self, state):
    """The replicated state as one copy (for checkpoints and evaluation)."""
    if self.backend == "pmap":
      return jax.tree.map(lambda x: x[0], state)
    return state

  def put_batch(self, batch: dict) -> dict:
    """Host batch `(local_devices, per_device, ...)` → device arrays for `compile`'s fn."""
    if self.backend == "pmap":
      return {k: jax.device_put(v, self._local_stack) for k, v in batch.items()}
    sharding = NamedSharding(self.mesh, P(AXIS))
    return {k: jax.make_array_from_process_local_data(sharding, v.reshape(-1, *v.shape[2:]))
            for k, v in batch.items()}
