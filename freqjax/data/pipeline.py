"""Host-side input pipeline: seeded shuffling, per-host sharding, batching and prefetch.

Training batch `i` of a run is a pure function of `(seed, i)`: epoch `e = i //
steps_per_epoch` visits the samples in the order `np.random.default_rng([seed, e])
.permutation(N)`, the remainder is dropped, so resuming from a step count gives exactly
the batches an uninterrupted run would have seen. Each global batch is cut into
`process_count` contiguous host slices; a host's slice is shaped `(num_devices,
per_device, ...)` for its local devices.

Batches are dicts of numpy arrays:
  `x`: float32 `(D, B, 3, T, V, M)` joint coordinates (device, sample, xyz, frames,
    joints, persons);
  `label`: int32 `(D, B)`;
  `index`: int32 `(D, B)` dataset rows (to join per-sample arrays such as text embeddings);
  `mask` (evaluation only): bool `(D, B)`, False on the padding of the last batch;
  plus whatever `extra_fn(indices, step)` returns, each array reshaped from `(D * B, ...)`.

`prefetch` moves batches to the device(s) in a background thread so host work overlaps
with the train step.
"""
import collections
import concurrent.futures
import dataclasses
import functools
import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import jax
import numpy as np

Batch = dict[str, np.ndarray]
ExtraFn = Callable[[np.ndarray, int], dict[str, np.ndarray]]
_RESERVED = ("x", "label", "index", "mask")


class Dataset(Protocol):
  """What the pipeline needs of a dataset (`readers.SkeletonDataset` is one)."""
  labels: np.ndarray

  def __len__(self) -> int: ...

  def read(self, indices: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True, eq=False)
class Subset:
  """Rows `indices` of a dataset, as a dataset (a label subset, a monitoring slice)."""
  base: Dataset
  indices: np.ndarray

  @property
  def labels(self) -> np.ndarray:
    return np.asarray(self.base.labels)[self.indices]

  def __len__(self) -> int:
    return len(self.indices)

  def read(self, indices: np.ndarray) -> np.ndarray:
    return self.base.read(self.indices[np.asarray(indices)])


def steps_per_epoch(num_samples: int, global_batch_size: int) -> int:
  """Training steps in one epoch (the remainder is dropped)."""
  return num_samples // global_batch_size


def epoch_permutation(num_samples: int, seed: int, epoch: int) -> np.ndarray:
  """`(num_samples,)` order in which training epoch `epoch` visits the dataset."""
  return np.random.default_rng([seed, epoch]).permutation(num_samples)


def _host_layout(global_batch_size: int, num_devices: int | None, process_index: int | None,
                 process_count: int | None) -> tuple[int, int, int]:
  """Resolves jax's defaults; returns (num_devices, host batch size, process index)."""
  num_devices = jax.local_device_count() if num_devices is None else num_devices
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is outside [0, {process_count}).")
  if global_batch_size % (process_count * num_devices):
    raise ValueError(
        f"The global batch size {global_batch_size} must be divisible by processes x local "
        f"devices = {process_count} x {num_devices}; change the batch size.")
  return num_devices, global_batch_size // process_count, process_index


def _make_batch(dataset: Dataset, indices: np.ndarray, step: int, num_devices: int,
                extra_fn: ExtraFn | None) -> Batch:
  def per_device(a: np.ndarray) -> np.ndarray:
    return a.reshape(num_devices, a.shape[0] // num_devices, *a.shape[1:])

  batch = {"x": per_device(dataset.read(indices)),
           "label": per_device(np.asarray(dataset.labels[indices], np.int32)),
           "index": per_device(indices.astype(np.int32))}
  if extra_fn is not None:
    for name, value in extra_fn(indices, step).items():
      value = np.asarray(value)
      if name in _RESERVED:
        raise ValueError(f"extra_fn returned {name!r}, a name the pipeline uses itself.")
      if value.shape[:1] != indices.shape:
        raise ValueError(f"extra_fn returned {name!r} with shape {value.shape}; its leading "
                         f"axis must be the {len(indices)} samples of the host batch.")
      batch[name] = per_device(value)
  return batch


def train_batches(dataset: Dataset, global_batch_size: int, seed: int, *, start_step: int = 0,
                  num_devices: int | None = None, process_index: int | None = None,
                  process_count: int | None = None, extra_fn: ExtraFn | None = None,
                  threads: int = 1) -> Iterator[Batch]:
  """Endless training batches from step `start_step` on (see the module docstring).

  Args:
    dataset: the samples.
    global_batch_size: samples per step over all hosts and devices.
    seed: shuffling seed.
    start_step: the first step to produce (resume from a checkpoint's step).
    num_devices: local devices (default `jax.local_device_count()`).
    process_index, process_count: this host and the host count (default jax's).
    extra_fn: `(indices (host_batch,), step) -> {name: (host_batch, ...)}`, more arrays
      for each batch.
    threads: batches made at once, each in its own thread, yielded in step order (the
      same batches as with 1: batch `i` depends on `(seed, i)` only). numpy's gathers and
      copies release the GIL, so threads scale the host's rate with its cores
      (`benchmarks/input_pipeline.py`).
  """
  num_devices, host_batch, process_index = _host_layout(
      global_batch_size, num_devices, process_index, process_count)
  steps = steps_per_epoch(len(dataset), global_batch_size)
  if steps == 0:
    raise ValueError(f"The dataset has {len(dataset)} samples, fewer than one global batch "
                     f"of {global_batch_size}; lower the batch size.")
  if threads < 1:
    raise ValueError(f"threads is {threads}; use 1 or more.")
  # The last two epochs' orders: threads near an epoch boundary work on both.
  permutation = functools.lru_cache(maxsize=2)(
      lambda epoch: epoch_permutation(len(dataset), seed, epoch))

  def make_batch(step: int) -> Batch:
    start = (step % steps) * global_batch_size + process_index * host_batch
    indices = permutation(step // steps)[start:start + host_batch]
    return _make_batch(dataset, indices, step, num_devices, extra_fn)

  if threads == 1:
    return map(make_batch, itertools.count(start_step))
  return _in_order(make_batch, itertools.count(start_step), threads)


def _in_order(fn: Callable[[int], Batch], steps: Iterator[int],
              threads: int) -> Iterator[Batch]:
  """`fn(step)` for each step, `threads` at a time, yielded in order; the pool stops when
  the iterator is closed or collected."""
  with concurrent.futures.ThreadPoolExecutor(threads, "freqjax-batches") as pool:
    pending = collections.deque(pool.submit(fn, step) for step in itertools.islice(
        steps, threads))
    try:
      while True:
        done = pending.popleft().result()
        pending.append(pool.submit(fn, next(steps)))
        yield done
    finally:
      for future in pending:
        future.cancel()


def eval_batches(dataset: Dataset, global_batch_size: int, *, num_devices: int | None = None,
                 process_index: int | None = None, process_count: int | None = None,
                 extra_fn: ExtraFn | None = None) -> Iterator[Batch]:
  """One pass in dataset order, every sample exactly once over all hosts.

  The last global batch is padded (rows wrap around to the start) and `mask` is False on
  the padding; every host yields the same number of batches, `ceil(N / global_batch_size)`.
  Arguments as `train_batches`.
  """
  num_devices, host_batch, process_index = _host_layout(
      global_batch_size, num_devices, process_index, process_count)
  num_samples = len(dataset)
  if num_samples == 0:
    raise ValueError("The evaluation dataset is empty.")

  def batches() -> Iterator[Batch]:
    for step in range(-(-num_samples // global_batch_size)):
      positions = step * global_batch_size + process_index * host_batch + np.arange(host_batch)
      batch = _make_batch(dataset, positions % num_samples, step, num_devices, extra_fn)
      batch["mask"] = (positions < num_samples).reshape(batch["label"].shape)
      yield batch

  return batches()


def prefetch(iterator: Iterable[Any], size: int = 2,
             put: Callable[[Any], Any] | None = None) -> "Prefetcher":
  """Iterates over `iterator` up to `size` items ahead in a background thread.

  `put` (e.g. `lambda b: jax.device_put(b, sharding)`) runs in the thread, so host reading
  and the transfer to the device overlap with the caller's compute. An exception in the
  thread is raised by the caller's `next`. `close()` (or a `with` block) stops the thread
  early.
  """
  return Prefetcher(iterator, size, put)


class Prefetcher:
  """The iterator `prefetch` returns."""

  def __init__(self, iterator: Iterable[Any], size: int = 2,
               put: Callable[[Any], Any] | None = None):
    self._stop = threading.Event()
    if size < 1:
      raise ValueError(f"prefetch size must be at least 1, got {size}.")
    self._queue = queue.Queue(maxsize=size)
    self._done = False
    # The thread holds the queue and the event, not `self`, so an abandoned Prefetcher is
    # collected and its `__del__` stops the thread.
    self._thread = threading.Thread(
        target=_produce, args=(iter(iterator), put, self._queue, self._stop), daemon=True)
    self._thread.start()

  def __iter__(self) -> "Prefetcher":
    return self

  def __next__(self) -> Any:
    if self._done:
      raise StopIteration
    item = self._queue.get()
    if item is _END:
      self._done = True
      raise StopIteration
    if isinstance(item, _Raised):
      self._done = True
      raise item.error
    return item

  def close(self) -> None:
    """Stops the background thread (it finishes the item it is producing)."""
    self._done = True
    self._stop.set()
    self._thread.join()

  def __del__(self):
    self._stop.set()

  def __enter__(self) -> "Prefetcher":
    return self

  def __exit__(self, *exc_info) -> None:
    self.close()


_END = object()


class _Raised:
  """Carries an exception from the prefetch thread to the consumer."""

  def __init__(self, error: BaseException):
    self.error = error


def _offer(items: queue.Queue, stop: threading.Event, item: Any) -> bool:
  """Puts `item` unless the consumer stopped first; returns whether it was put."""
  while not stop.is_set():
    try:
      items.put(item, timeout=0.05)
      return True
    except queue.Full:
      continue
  return False


def _produce(iterator: Iterator[Any], put: Callable[[Any], Any] | None, items: queue.Queue,
             stop: threading.Event) -> None:
  try:
    for item in iterator:
      if not _offer(items, stop, put(item) if put is not None else item):
        return
  except BaseException as error:  # pylint: disable=broad-except
    _offer(items, stop, _Raised(error))
    return
  _offer(items, stop, _END)
