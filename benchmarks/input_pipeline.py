"""Input pipeline throughput: host loader, prefetch to device, on-device augmentation.

Writes synthetic NTU-shaped samples in the AimCLR format (`train_position.npy` +
`train_label.pkl`) to a temporary directory, then measures samples/s at the given batch
size and prints a markdown table. The file was just written, so the loader reads from the
page cache (a warm-cache number, like any epoch after the first).

  python benchmarks/input_pipeline.py [--num_samples 8000 --batch_size 128 --frames 50]
"""
import argparse
import os
import pickle
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from freqjax import xla_env  # pylint: disable=wrong-import-position

xla_env.configure()

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
from numpy.lib.format import open_memmap  # pylint: disable=wrong-import-position

from freqjax.data import augment, pipeline, readers  # pylint: disable=wrong-import-position


def write_synthetic(directory: str, num_samples: int, frames: int, seed: int = 0) -> None:
  """Random `(N, 3, T, 25, 2)` coordinates and labels in AimCLR's file layout."""
  rng = np.random.default_rng(seed)
  data = open_memmap(os.path.join(directory, "train_position.npy"), mode="w+",
                     dtype=np.float32, shape=(num_samples, 3, frames, 25, 2))
  for start in range(0, num_samples, 1000):
    stop = min(start + 1000, num_samples)
    data[start:stop] = rng.standard_normal(data[start:stop].shape, dtype=np.float32)
  data.flush()
  del data
  labels = rng.integers(0, 60, num_samples).tolist()
  names = [f"S001C001P001R001A{label + 1:03d}_{i}" for i, label in enumerate(labels)]
  with open(os.path.join(directory, "train_label.pkl"), "wb") as f:
    pickle.dump((names, labels), f)


def rate(fn, num_batches: int, batch_size: int) -> tuple[float, float]:
  """(samples/s, ms/batch) of `fn(i)` called for i in range(num_batches)."""
  start = time.perf_counter()
  for i in range(num_batches):
    fn(i)
  seconds = time.perf_counter() - start
  return num_batches * batch_size / seconds, 1000 * seconds / num_batches


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_samples", type=int, default=8000)
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--frames", type=int, default=50)
  args = parser.parse_args()
  batch_size = args.batch_size
  devices = jax.local_devices()
  mesh = jax.sharding.Mesh(np.array(devices), ("data",))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  put = lambda batch: jax.device_put(batch, sharding)
  rows = []

  with tempfile.TemporaryDirectory() as directory:
    write_synthetic(directory, args.num_samples, args.frames)
    dataset = readers.load_dataset("aimclr", directory, "train")
    epoch = pipeline.steps_per_epoch(len(dataset), batch_size)
    batches = lambda: pipeline.train_batches(dataset, batch_size, seed=0)

    host = batches()
    next(host)
    rows.append(("host loader (read, shuffle, batch)", *rate(lambda _: next(host), epoch,
                                                            batch_size)))

    def block(batch):
      jax.block_until_ready(batch)

    with pipeline.prefetch(batches(), size=2, put=put) as device_batches:
      block(next(device_batches))
      rows.append(("loader + prefetch to device",
                   *rate(lambda _: block(next(device_batches)), epoch, batch_size)))

    normal = jax.jit(augment.batch_normal_view)
    extreme = jax.jit(augment.batch_extreme_view)
    host_x = next(batches())["x"]
    x = jax.device_put(host_x.reshape(-1, *host_x.shape[2:]), devices[0])
    keys = [jax.random.key(i) for i in range(epoch + 1)]
    for name, view in (("normal view", normal), ("extreme view", extreme)):
      block(view(keys[-1], x))
      rows.append((f"augmentation alone: {name} (jit, vmap)",
                   *rate(lambda i, view=view: block(view(keys[i], x)), epoch, batch_size)))

    @jax.jit
    def three_views(key, x):
      # AimCLR's step: two normal views and one extreme view of the same batch.
      k1, k2, k3 = jax.random.split(key, 3)
      return normal(k1, x), normal(k2, x), extreme(k3, x)

    with pipeline.prefetch(batches(), size=2, put=put) as device_batches:
      first = next(device_batches)["x"]
      block(three_views(keys[-1], first.reshape(-1, *first.shape[2:])))

      def step(i):
        x = next(device_batches)["x"]
        block(three_views(keys[i], x.reshape(-1, *x.shape[2:])))

      rows.append(("loader + prefetch + 2 normal + 1 extreme views", *rate(step, epoch,
                                                                            batch_size)))

  device = f"{len(devices)} x {devices[0].device_kind}"
  print(f"Input pipeline, {args.num_samples} samples (3, {args.frames}, 25, 2), batch "
        f"{batch_size}, {device}, {os.cpu_count()} CPU cores\n")
  print("| stage | samples/s | ms/batch |")
  print("|---|---:|---:|")
  for name, samples_per_second, ms in rows:
    print(f"| {name} | {samples_per_second:,.0f} | {ms:.1f} |")


if __name__ == "__main__":
  main()
