"""Data parallelism: the device axis, the compiled per-device step, multi-process start-up.

A step is written once, per device, and talks to the other devices only by named-axis
collectives over `AXIS`. `DataParallel` compiles it with `jax.pmap` (the default) or with
`jax.jit(jax.shard_map(...))` over a 1-D `data` mesh, and moves states and batches to the
devices. Per-sample randomness is drawn from `row_keys`: one key per GLOBAL row, so N
devices with a global batch B give the same numbers as one device with batch B.

Several processes (`initialize_if_requested` starts `jax.distributed`): the data axis
holds every process's devices, grouped by process in process order, so process p feeds
the p-th contiguous slice of every global batch (`DataParallel.process_slice`) to its
own devices (`put_batch`), and `get_state` gives each process its own copy of the state.
"""
import dataclasses
import functools
import itertools
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


def varying(tree):
  """`tree` typed as device-varying over `AXIS` (inside a step).

  Differentiate per-device losses with respect to this copy of the replicated parameters:
  its gradients are this device's (the step `pmean`s them), as under `pmap`; the
  replicated original would get JAX's implicit sum over devices under `shard_map`.
  """
  return jax.tree.map(lambda x: jax.lax.pcast(x, AXIS, to="varying"), tree)


def row_keys(key: jax.Array, rows: jax.Array) -> jax.Array:
  """`(n, 2)` one key per global row: `fold_in(key, rows[i])`."""
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(rows)


# What a plain launcher sets on every process (JAX's own names): all three, or none.
PLAIN_LAUNCHER_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")


class LauncherError(ValueError):
  """The multi-process environment variables are incomplete or malformed (the message is
  one line for the user; entry points report it as a `freqjax.cli.UserError`)."""


def wants_multiple_processes(env: Mapping[str, str]) -> bool:
  """True under a multi-process launcher: JAX's plain variables, a SLURM or Open MPI
  job of several tasks, or a multi-worker Cloud TPU slice."""
  if any(env.get(var) for var in PLAIN_LAUNCHER_VARIABLES):
    return True
  if any(int(env.get(var, "1") or 1) > 1 for var in ("SLURM_NTASKS", "OMPI_COMM_WORLD_SIZE")):
    return True
  return "," in env.get("TPU_WORKER_HOSTNAMES", "")


def _cluster_detected(env: Mapping[str, str]) -> bool:
  """A launcher whose variables JAX reads itself (SLURM, Open MPI, Cloud TPU)."""
  return wants_multiple_processes({k: v for k, v in env.items()
                                   if k not in PLAIN_LAUNCHER_VARIABLES})


def distributed_arguments(env: Mapping[str, str]) -> dict:
  """Keyword arguments of `jax.distributed.initialize` for the launcher in `env`.

  With `JAX_NUM_PROCESSES` and `JAX_PROCESS_ID` set, all three plain variables are
  passed (JAX reads only the coordinator's address itself). Under SLURM, Open MPI or a
  Cloud TPU slice nothing is passed, or only `JAX_COORDINATOR_ADDRESS` if set: JAX
  detects the rest.

  Raises:
    LauncherError: some of the plain variables are set but not all of them (outside a
      cluster JAX detects), or a count or id is not an integer in range.
  """
  given = {var: env[var] for var in PLAIN_LAUNCHER_VARIABLES if env.get(var)}
  if not given:
    return {}
  missing = [var for var in PLAIN_LAUNCHER_VARIABLES if var not in given]
  if missing == ["JAX_NUM_PROCESSES", "JAX_PROCESS_ID"] and _cluster_detected(env):
    return {"coordinator_address": given["JAX_COORDINATOR_ADDRESS"]}
  if missing:
    raise LauncherError(
        f"{', '.join(given)} set but not {', '.join(missing)}: a multi-process launch "
        "sets all three of JAX_COORDINATOR_ADDRESS (host:port of process 0), "
        "JAX_NUM_PROCESSES and JAX_PROCESS_ID (0, 1, ...) on every process, or none of "
        "them for one process.")
  try:
    num_processes, process_id = int(given["JAX_NUM_PROCESSES"]), int(given["JAX_PROCESS_ID"])
  except ValueError:
    num_processes = process_id = -1
  if not 0 <= process_id < num_processes:
    raise LauncherError(
        f"JAX_NUM_PROCESSES={given['JAX_NUM_PROCESSES']}, JAX_PROCESS_ID="
        f"{given['JAX_PROCESS_ID']}: the count must be a positive integer and the id an "
        "integer from 0 to the count - 1, different on every process.")
  return {"coordinator_address": given["JAX_COORDINATOR_ADDRESS"],
          "num_processes": num_processes, "process_id": process_id}


def initialize_if_requested() -> None:
  """Starts `jax.distributed` when a launcher started several processes (call it before
  anything else touches JAX's devices).

  CPU processes talk through Gloo (TCP) unless `jax_cpu_collectives_implementation` was
  set otherwise; on GPU and TPU the setting is unused.
  """
  if not wants_multiple_processes(os.environ):
    return
  arguments = distributed_arguments(os.environ)
  if jax.config.jax_cpu_collectives_implementation is None:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(**arguments)
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
    # The pipeline gives process p the p-th contiguous slice of every global batch, so
    # the data axis must hold each process's devices together, in process order.
    owners = [d.process_index for d in self.devices]
    counts = {owners.count(p) for p in owners}
    if owners != sorted(owners) or len(counts) > 1:
      raise ValueError(f"DataParallel devices {self.devices} must be grouped by process, "
                       "in process order, the same number for each process.")

  @property
  def num_devices(self) -> int:
    return len(self.devices)

  @property
  def local_devices(self) -> tuple:
    """The devices of the data axis that this process drives."""
    return tuple(d for d in self.devices if d.process_index == jax.process_index())

  @property
  def num_local_devices(self) -> int:
    return len(self.local_devices)

  @property
  def process_slice(self) -> tuple[int, int]:
    """`(index, count)`: this process feeds slice `index` of `count` equal, contiguous
    slices of every global batch (`count` processes drive the data axis)."""
    processes = sorted({d.process_index for d in self.devices})
    return processes.index(jax.process_index()), len(processes)

  @functools.cached_property
  def mesh(self) -> jax.sharding.Mesh:
    return jax.sharding.Mesh(np.asarray(self.devices), (AXIS,))

  def compile(self, per_device_fn, donate_state: bool = True):
    """`fn(state, batch) -> (state, metrics)` running `per_device_fn` on every device."""
    donate = (0,) if donate_state else ()
    if self.backend == "pmap":
      return jax.pmap(per_device_fn, axis_name=AXIS, devices=self.devices,
                      donate_argnums=donate)
    # With JAX's replication check on: every output must be invariant over the axis, which
    # the step guarantees with pmean and invariant all_gathers (and `varying` parameters
    # for the per-device gradients).
    sharded = jax.shard_map(per_device_fn, mesh=self.mesh, in_specs=(P(), P(AXIS)),
                            out_specs=(P(), P()))
    step = jax.jit(sharded, donate_argnums=donate)
    return step if jax.process_count() == 1 else _RunWhenAllCompiled(step)

  @functools.cached_property
  def _local_stack(self) -> NamedSharding:
    """pmap's layout: a leading axis over this host's devices, one slice per device."""
    return NamedSharding(jax.sharding.Mesh(np.asarray(self.local_devices), (AXIS,)), P(AXIS))

  def put_state(self, state):
    """Host (or single-device) state → replicated over the data axis."""
    if self.backend == "pmap":
      n = self.num_local_devices
      return jax.tree.map(lambda x: jax.device_put(
          np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), self._local_stack), state)
    return jax.device_put(state, NamedSharding(self.mesh, P()))

  def get_state(self, state):
    """The replicated state as one copy on this process's devices (for checkpoints and
    evaluation; with several processes, each gets its own copy)."""
    if self.backend == "pmap":
      return jax.tree.map(lambda x: x[0], state)
    # A replicated array of a multi-process mesh spans devices this process cannot use
    # alone: its local shard is a whole copy.
    return jax.tree.map(lambda x: x if x.is_fully_addressable else x.addressable_data(0),
                        state)

  def put_batch(self, batch: dict) -> dict:
    """Host batch `(local_devices, per_device, ...)` → device arrays for `compile`'s fn."""
    if self.backend == "pmap":
      return {k: jax.device_put(v, self._local_stack) for k, v in batch.items()}
    sharding = NamedSharding(self.mesh, P(AXIS))
    return {k: jax.make_array_from_process_local_data(sharding, v.reshape(-1, *v.shape[2:]))
            for k, v in batch.items()}


def wait_for_all_processes(name: str, timeout_s: int = 3600) -> None:
  """Returns once every process has called it with `name` (through JAX's coordination
  service, not a device collective); at once with one process.

  Call it before a collective that processes may reach far apart (after loading data or
  compiling): Gloo, the CPU backend's collectives, gives a late process only 30 s to join
  a new group of devices.
  """
  if jax.process_count() > 1:
    from orbax.checkpoint import multihost  # pylint: disable=import-outside-toplevel
    multihost.get_barrier_sync_fn()(key=f"freqjax:{name}", timeout_ms=timeout_s * 1000)


class _RunWhenAllCompiled:
  """A jitted step that, with several processes, compiles at its first call and runs
  once every process has compiled it (`wait_for_all_processes`: compile times differ).

  (`jax.pmap`'s ahead-of-time compilation takes this process's arrays for the global
  ones with several processes, so the pmap backend goes without.)
  """
  _made = itertools.count()  # the same sequence on every process: the barriers' names

  def __init__(self, step):
    self._step, self._compiled, self._number = step, None, next(self._made)

  def __call__(self, *args):
    if self._compiled is None:
      self._compiled = self._step.lower(*args).compile()
      wait_for_all_processes(f"compiled step {self._number}")
    return self._compiled(*args)
