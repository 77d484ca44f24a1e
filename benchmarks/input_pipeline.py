"""Host input pipeline throughput: what one host can feed its devices per second.

Writes synthetic NTU-shaped samples in the AimCLR format (`train_position.npy` +
`train_label.pkl`) and an NTU-60-shaped per-class text table (4 sentences per class,
CLIP's widths), then runs the pretraining loop's own input path, stage by stage:
`pipeline.train_batches` (read, shuffle, per-device layout) with the text table's
`extra_fn` (each row's sentence embedding and word features), `pipeline.prefetch` (a
background thread) and `parallel.DataParallel.put_batch` for both data-parallel
backends, onto `--devices` devices (on a CPU-only machine, fake CPU devices: the transfer
is a copy in host memory, so an accelerator's PCIe/ICI transfer is not measured). Then the
augmentations alone, which run inside the compiled step (on the accelerator on a GPU/TPU
host, on the CPU here). The file was just written, so the loader reads from the page cache
(a warm-cache number, like any epoch after the first).

  python benchmarks/input_pipeline.py [--num_samples 8000 --batch_size 512 --devices 8]
"""
import argparse
import os
import pickle
import sys
import tempfile
import time


def _parse() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--num_samples", type=int, default=8000)
  parser.add_argument("--batch_size", type=int, default=512, help="global, over devices")
  parser.add_argument("--frames", type=int, default=50)
  parser.add_argument("--devices", type=int, default=8,
                      help="CPU devices to feed (fake ones on a CPU-only machine)")
  parser.add_argument("--text_tokens", type=int, default=40,
                      help="word features per sentence (the longest NTU sentence's tokens)")
  parser.add_argument("--threads", default="1,2,4",
                      help="comma-separated loader thread counts to measure")
  parser.add_argument("--batches", type=int, default=0,
                      help="batches timed per stage (default: one epoch)")
  return parser.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
  # Before jax starts: the device count is fixed when the CPU backend is created.
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                             f" --xla_force_host_platform_device_count={ARGS.devices}")

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from freqjax import xla_env  # pylint: disable=wrong-import-position

xla_env.configure()

import jax  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
from numpy.lib.format import open_memmap  # pylint: disable=wrong-import-position

from freqjax import parallel  # pylint: disable=wrong-import-position
from freqjax.data import augment, pipeline, readers  # pylint: disable=wrong-import-position
from freqjax.text import table as text_table  # pylint: disable=wrong-import-position

NUM_CLASSES = 60
SENTENCES_PER_CLASS = 4
CLIP_WIDTH = 512  # CLIP ViT-B/32's text width and projection


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
  labels = rng.integers(0, NUM_CLASSES, num_samples).tolist()
  names = [f"S001C001P001R001A{label + 1:03d}_{i}" for i, label in enumerate(labels)]
  with open(os.path.join(directory, "train_label.pkl"), "wb") as f:
    pickle.dump((names, labels), f)


def synthetic_text_table(tokens: int, seed: int = 0) -> text_table.TextTable:
  """A per-class table shaped like `python -m freqjax.text.embed`'s NTU-60 output
  (float16 storage, `tokens` word features per sentence, some padding)."""
  rng = np.random.default_rng(seed)
  rows = NUM_CLASSES * SENTENCES_PER_CLASS
  mask = np.arange(tokens)[None, :] < rng.integers(tokens // 2, tokens + 1, rows)[:, None]
  words = rng.standard_normal((rows, tokens, CLIP_WIDTH), dtype=np.float32) * mask[..., None]
  return text_table.TextTable(
      path="(benchmark)", kind="class", keys=np.array([str(k) for k in range(NUM_CLASSES)]),
      offsets=np.arange(0, rows + 1, SENTENCES_PER_CLASS),
      text_embedding=rng.standard_normal((rows, CLIP_WIDTH)).astype(np.float16),
      word_features=words.astype(np.float16), word_mask=mask, model="benchmark",
      random_init=True, descriptions_sha256="", seed=seed)


def rate(fn, num_batches: int, batch_size: int) -> tuple[float, float]:
  """(samples/s, ms/batch) of `fn(i)` called for i in range(num_batches)."""
  start = time.perf_counter()
  for i in range(num_batches):
    fn(i)
  seconds = time.perf_counter() - start
  return num_batches * batch_size / seconds, 1000 * seconds / num_batches


def block(tree) -> None:
  jax.block_until_ready(tree)


def main(args: argparse.Namespace) -> None:
  batch_size = args.batch_size
  devices = jax.local_devices()
  rows = []

  with tempfile.TemporaryDirectory() as directory:
    write_synthetic(directory, args.num_samples, args.frames)
    dataset = readers.load_dataset("aimclr", directory, "train")
    extra_fn = synthetic_text_table(args.text_tokens).extra_fn(dataset.labels)
    num_batches = args.batches or pipeline.steps_per_epoch(len(dataset), batch_size)

    def batches(with_text: bool = True, threads: int = 1):
      return pipeline.train_batches(dataset, batch_size, seed=0, num_devices=len(devices),
                                    extra_fn=extra_fn if with_text else None,
                                    threads=threads)

    for threads in [int(t) for t in args.threads.split(",")]:
      for name, with_text in (("skeletons (read, shuffle, per-device layout)", False),
                              ("skeletons + text (extra_fn)", True)):
        host = batches(with_text, threads)
        next(host)
        rows.append((f"host loader, {threads} thread(s): {name}",
                     *rate(lambda _, host=host: next(host), num_batches, batch_size)))
      for backend in ("pmap", "shard_map"):
        dp = parallel.DataParallel(backend=backend)
        with pipeline.prefetch(batches(True, threads), size=2,
                               put=dp.put_batch) as device_batches:
          block(next(device_batches))
          rows.append((f"loader ({threads} thread(s)) + text + prefetch + put_batch "
                       f"({backend})", *rate(lambda _, it=device_batches: block(next(it)),
                                             num_batches, batch_size)))

    normal = jax.jit(augment.batch_normal_view)
    extreme = jax.jit(augment.batch_extreme_view)
    host_x = next(batches(False))["x"]
    per_device = batch_size // len(devices)
    x = jax.device_put(host_x[0], devices[0])  # one device's share
    keys = [jax.random.key(i) for i in range(num_batches + 1)]
    for name, view in (("normal view", normal), ("extreme view", extreme)):
      block(view(keys[-1], x))
      rows.append((f"in the step, one device's share: {name} (jit, vmap)",
                   *rate(lambda i, view=view: block(view(keys[i], x)), num_batches,
                         per_device)))

  print(f"Input pipeline, {args.num_samples} samples (3, {args.frames}, 25, 2) + text "
        f"({args.text_tokens} x {CLIP_WIDTH} float16 word features), global batch "
        f"{batch_size} over {len(devices)} x {devices[0].device_kind}, {os.cpu_count()} CPU "
        f"cores\n")
  print("| stage | samples/s | per device | ms/batch |")
  print("|---|---:|---:|---:|")
  for name, samples_per_second, ms in rows:
    shared = "one device" not in name
    print(f"| {name} | {samples_per_second:,.0f} | "
          f"{samples_per_second / len(devices) if shared else samples_per_second:,.0f} | "
          f"{ms:.1f} |")


if __name__ == "__main__":
  main(ARGS)
