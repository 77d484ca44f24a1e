"""Input pipeline: determinism, resumption, epochs, host sharding, eval coverage, prefetch."""
import itertools
import threading
import time

import jax
import numpy as np
import pytest

from freqjax.data import pipeline
from freqjax.data.readers import SkeletonDataset


def _dataset(n):
  """Sample i is filled with the value i, so a batch's x tells which rows it holds."""
  data = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None, None, None],
                         (n, 3, 4, 25, 2))
  labels = (np.arange(n) * 7 % 5).astype(np.int32)
  return SkeletonDataset(data=data, labels=labels, sample_names=tuple(map(str, range(n))),
                         num_classes=5, path="memory")


def _rows(batch):
  """Dataset rows in a batch, read back from x, checked against index and label."""
  rows = batch["x"][:, :, 0, 0, 0, 0].astype(np.int32)
  np.testing.assert_array_equal(rows, batch["index"])
  return rows


def _take(iterator, n):
  return list(itertools.islice(iterator, n))


def test_batches_are_shaped_per_device_and_typed():
  dataset = _dataset(40)
  batch = next(pipeline.train_batches(dataset, 16, seed=0, num_devices=4, process_count=1,
                                      process_index=0))
  assert batch["x"].shape == (4, 4, 3, 4, 25, 2) and batch["x"].dtype == np.float32
  assert batch["label"].shape == (4, 4) and batch["label"].dtype == np.int32
  assert batch["index"].dtype == np.int32
  np.testing.assert_array_equal(batch["label"], dataset.labels[_rows(batch)])


def test_train_batch_i_is_the_seeded_epoch_permutation():
  n, global_batch = 37, 8  # 4 steps an epoch, 5 samples dropped
  batches = _take(pipeline.train_batches(_dataset(n), global_batch, seed=3, num_devices=2,
                                         process_index=0, process_count=1), 12)
  for step, batch in enumerate(batches):
    epoch, within = divmod(step, n // global_batch)
    order = np.random.default_rng([3, epoch]).permutation(n)
    np.testing.assert_array_equal(_rows(batch).ravel(),
                                  order[within * global_batch:(within + 1) * global_batch])


def test_deterministic_and_epochs_differ():
  make = lambda seed: pipeline.train_batches(_dataset(37), 8, seed=seed, num_devices=2,
                                             process_index=0, process_count=1)
  first, again, other = (np.stack([_rows(b) for b in _take(make(s), 8)]) for s in (0, 0, 1))
  np.testing.assert_array_equal(first, again)
  assert not np.array_equal(first, other)
  epoch0, epoch1 = first[:4].ravel(), first[4:].ravel()
  assert len(set(epoch0)) == 32 and len(set(epoch1)) == 32  # no repeats within an epoch
  assert not np.array_equal(epoch0, epoch1)


def test_resume_from_step_matches_uninterrupted_run():
  make = lambda start: pipeline.train_batches(_dataset(37), 8, seed=5, start_step=start,
                                              num_devices=2, process_index=0, process_count=1)
  uninterrupted = _take(make(0), 11)
  for k in (1, 4, 6):
    resumed = _take(make(k), 11 - k)
    for a, b in zip(uninterrupted[k:], resumed):
      for name in a:
        np.testing.assert_array_equal(a[name], b[name])


class _SlowEarlyRows:
  """A dataset whose reads of low rows are slow: with several threads, later batches are
  often ready before earlier ones."""

  def __init__(self, dataset):
    self.dataset, self.labels = dataset, dataset.labels

  def __len__(self):
    return len(self.dataset)

  def read(self, indices):
    time.sleep(0.02 * float(np.mean(indices < len(self.dataset) // 2)))
    return self.dataset.read(indices)


@pytest.mark.parametrize("threads", [2, 5])
def test_loader_threads_give_the_batches_of_one_thread_in_order(threads):
  dataset = _dataset(37)
  extra_fn = lambda indices, step: {"text": np.full(len(indices), step, np.int32)}
  make = lambda data, threads, start: pipeline.train_batches(
      data, 8, seed=5, start_step=start, num_devices=2, process_index=0, process_count=1,
      extra_fn=extra_fn, threads=threads)
  one = _take(make(dataset, 1, 3), 12)  # over two epoch boundaries (4 steps per epoch)
  many = make(_SlowEarlyRows(dataset), threads, 3)
  for step, (a, b) in enumerate(zip(one, _take(many, 12)), start=3):
    assert b["text"].ravel().tolist() == [step] * 8
    for name in a:
      np.testing.assert_array_equal(a[name], b[name], err_msg=f"step {step} {name}")
  many.close()  # stops the pool: no thread is left making batches
  time.sleep(0.1)
  assert not [t for t in threading.enumerate() if t.name.startswith("freqjax-batches")]


def test_hosts_partition_each_global_batch():
  dataset = _dataset(50)
  hosts = [_take(pipeline.train_batches(dataset, 12, seed=1, num_devices=2, process_index=p,
                                        process_count=3), 8) for p in range(3)]
  single = _take(pipeline.train_batches(dataset, 12, seed=1, num_devices=2, process_index=0,
                                        process_count=1), 8)
  for step in range(8):
    parts = [_rows(hosts[p][step]).ravel() for p in range(3)]
    assert all(len(part) == 4 for part in parts)
    np.testing.assert_array_equal(np.concatenate(parts), _rows(single[step]).ravel())


@pytest.mark.parametrize("process_count", [1, 2])
def test_eval_visits_every_sample_exactly_once(process_count):
  dataset = _dataset(37)
  seen, steps = [], set()
  for process_index in range(process_count):
    batches = list(pipeline.eval_batches(dataset, 8, num_devices=2,
                                         process_index=process_index,
                                         process_count=process_count))
    steps.add(len(batches))
    for batch in batches:
      assert batch["mask"].shape == (2, 8 // process_count // 2)
      assert batch["mask"].dtype == bool
      seen.extend(_rows(batch)[batch["mask"]])
  assert steps == {5}  # ceil(37 / 8) on every host, so collectives line up
  assert sorted(seen) == list(range(37))


def test_extra_fn_adds_per_sample_arrays():
  embeddings = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
  calls = []

  def extra_fn(indices, step):
    calls.append(step)
    return {"text": embeddings[indices]}

  batches = _take(pipeline.train_batches(_dataset(20), 4, seed=0, start_step=2, num_devices=2,
                                         process_index=0, process_count=1,
                                         extra_fn=extra_fn), 2)
  assert calls == [2, 3]
  for batch in batches:
    assert batch["text"].shape == (2, 2, 6)
    np.testing.assert_array_equal(batch["text"], embeddings[_rows(batch)])
  with pytest.raises(ValueError, match="'label', a name the pipeline uses"):
    next(pipeline.eval_batches(_dataset(20), 4, num_devices=1, process_index=0,
                               process_count=1, extra_fn=lambda i, s: {"label": i}))
  with pytest.raises(ValueError, match="leading axis must be the 4 samples"):
    next(pipeline.eval_batches(_dataset(20), 4, num_devices=1, process_index=0,
                               process_count=1, extra_fn=lambda i, s: {"t": np.zeros(3)}))


def test_bad_batch_sizes():
  with pytest.raises(ValueError, match=r"10 must be divisible by processes x local devices"):
    pipeline.train_batches(_dataset(20), 10, seed=0, num_devices=4, process_index=0,
                           process_count=1)
  with pytest.raises(ValueError, match="fewer than one global batch"):
    pipeline.train_batches(_dataset(6), 8, seed=0, num_devices=1, process_index=0,
                           process_count=1)
  with pytest.raises(ValueError, match="outside"):
    pipeline.eval_batches(_dataset(6), 8, num_devices=1, process_index=2, process_count=2)


def test_defaults_come_from_jax():
  batch = next(pipeline.train_batches(_dataset(8), 4, seed=0))
  assert batch["x"].shape[0] == jax.local_device_count()


def test_prefetch_runs_put_in_a_thread_and_keeps_order():
  threads = set()

  def put(item):
    threads.add(threading.get_ident())
    return item * 10

  with pipeline.prefetch(iter(range(7)), size=2, put=put) as items:
    assert list(items) == [0, 10, 20, 30, 40, 50, 60]
  assert threads and threading.get_ident() not in threads


def test_prefetch_device_put_with_sharding():
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  batches = pipeline.eval_batches(_dataset(10), 4 * len(jax.devices()))
  for batch in pipeline.prefetch(batches, put=lambda b: jax.device_put(b, sharding)):
    assert isinstance(batch["x"], jax.Array) and batch["x"].sharding == sharding
    np.testing.assert_array_equal(np.asarray(batch["x"])[..., 0, 0, 0, 0], batch["index"])


def test_prefetch_raises_producer_errors_and_closes():
  def failing():
    yield 1
    raise OSError("disk gone")

  items = pipeline.prefetch(failing())
  assert next(items) == 1
  with pytest.raises(OSError, match="disk gone"):
    next(items)
  with pytest.raises(StopIteration):
    next(items)

  endless = pipeline.prefetch(itertools.count(), size=3)
  assert _take(endless, 5) == [0, 1, 2, 3, 4]
  endless.close()  # returns: the blocked producer notices and stops
  assert not endless._thread.is_alive()  # pylint: disable=protected-access
