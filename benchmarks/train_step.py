"""Pretraining step throughput: samples/s, first-compile seconds and peak memory.

Runs the real `freqjax.pretraining.step.train_step` (both augmentations, key-encoder EMA and
forward, query forward and backward, losses, optax update, queues) through
`DataParallel("pmap")` on one device, with random inputs of the pretraining shapes:
skeletons `(B, 3, T, 25, 2)`, a 512-d text embedding and word features `(B, 20, 512)` with
a padding mask. Configs are `configs/pretrain.py`'s base config (hidden 16→256, queues
32768 / 8192) with these variants:

  full      FreST after block 9 + Feature Modulation + Modality Harmonizer
  no_frest  model.frest_blocks = ()
  no_text   fm.weight = harmonizer.weight = 0 (both branches absent from the graph)
  plain     neither (SkeletonCLR's step)

Each (variant, batch) runs in a fresh subprocess with the persistent compilation cache
off, so "first step" is a cold compile plus one step, and memory is that run's own peak:
on CPU the growth of the process's peak resident set size (`ru_maxrss`) from just before
the train state is built to the end of the timed steps (state, compiled program and XLA's
buffers); on an accelerator the device's `peak_bytes_in_use`. The load average before and
after each run is printed: on a shared machine the step time grows with it.

  python benchmarks/train_step.py [--rows full,plain] [--batch 64 128] [--steps 2]
      [--no-input_pipeline] [--kernels auto|cpu|xla] [--compute_dtype float32|bfloat16]
      [--remat]

`--kernels`, `--compute_dtype` and `--remat` set `model.kernels`, `model.compute_dtype` and
`model.remat`. Off the CPU, the table also gives the step's achieved TFLOP/s (XLA's own
count of the compiled step's floating-point operations over the median step time) and its
fraction of the device's peak for the compute dtype (`PEAK_TFLOPS`; n/a for a device
missing there).

About 6 minutes on an idle 2-core CPU for everything, most of it XLA compiles (`--batch 64`
alone takes half). The input pipeline rows come from `benchmarks/input_pipeline.py` (a few
seconds).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from freqjax import xla_env  # noqa: E402

xla_env.configure()

ROWS = {
    "full": "FreST + FM + Harmonizer",
    "no_frest": "FM + Harmonizer, no FreST",
    "no_text": "FreST, no FM / Harmonizer (λ = 0)",
    "plain": "plain ST-GCN MoCo (neither)",
}
WORDS = 20
HERE = os.path.dirname(os.path.abspath(__file__))

# Dense peak TFLOP/s per chip by `device_kind` prefix and compute dtype. float32 on GPUs
# counts TF32 tensor cores (JAX's default matmul precision there), on TPUs bfloat16 passes
# (the default precision of float32 matmuls). Sources: NVIDIA's H100/H200 and A100
# datasheets (nvidia.com/en-us/data-center/{h100,h200,a100}: dense BF16 989 / 312, TF32
# 495 / 156; their headline figures are with 2:4 sparsity, twice these), Google Cloud's
# TPU pages (cloud.google.com/tpu/docs/{v4,v5e,v5p,v6e}: BF16 275 / 197 / 459 / 918).
PEAK_TFLOPS = {
    "NVIDIA H200": {"bfloat16": 989.0, "float32": 495.0},
    "NVIDIA H100": {"bfloat16": 989.0, "float32": 495.0},
    "NVIDIA A100": {"bfloat16": 312.0, "float32": 156.0},
    "TPU v4": {"bfloat16": 275.0, "float32": 275.0},
    "TPU v5 lite": {"bfloat16": 197.0, "float32": 197.0},
    "TPU v5p": {"bfloat16": 459.0, "float32": 459.0},
    "TPU v6 lite": {"bfloat16": 918.0, "float32": 918.0},
}


def peak_tflops(device_kind: str, compute_dtype: str) -> float | None:
  """The device's dense peak for `compute_dtype`, None when `PEAK_TFLOPS` lacks it."""
  for prefix, peaks in PEAK_TFLOPS.items():
    if device_kind.startswith(prefix):
      return peaks.get(compute_dtype)
  return None


def _config(row: str, batch: int, frames: int, model: dict):
  from configs import pretrain  # pylint: disable=import-outside-toplevel
  config = pretrain.base_config()
  config.optim.batch_size = batch
  config.data.num_frames = frames
  config.model.update(model)  # kernels, compute_dtype, remat
  if row in ("no_frest", "plain"):
    config.model.frest_blocks = ()
  if row in ("no_text", "plain"):
    config.fm.weight = 0.0
    config.harmonizer.weight = 0.0
  return config


def _peak_rss_mib() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def measure(row: str, batch: int, frames: int, steps: int, backend: str, model: dict) -> dict:
  """Times one variant in this process: first step, timed steps, peak memory."""
  import functools  # pylint: disable=import-outside-toplevel

  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from freqjax import optim, parallel  # pylint: disable=import-outside-toplevel
  from freqjax.pretraining import state as train_state  # pylint: disable=import-outside-toplevel
  from freqjax.pretraining import step as train_step  # pylint: disable=import-outside-toplevel

  config = _config(row, batch, frames, model)
  dp = parallel.DataParallel(backend, devices=tuple(jax.devices()[:1]))
  train_step.check_batch_layout(config, dp.num_devices)
  rng = np.random.default_rng(0)
  host = {"x": rng.standard_normal((batch, 3, frames, 25, 2), dtype=np.float32)}
  if config.fm.weight > 0 or config.harmonizer.weight > 0:
    z = rng.standard_normal((batch, config.fm.dim), dtype=np.float32)
    lengths = rng.integers(3, WORDS + 1, batch)
    host |= {"text_embedding": z / np.linalg.norm(z, axis=1, keepdims=True),
             "word_features": rng.standard_normal((batch, WORDS, config.fm.dim),
                                                  dtype=np.float32),
             "word_mask": np.arange(WORDS)[None] < lengths[:, None]}
  rss_before = _peak_rss_mib()

  steps_per_epoch = 40000 // batch
  tx = optim.sgd(config, steps_per_epoch)
  words = host.get("word_features")
  init = jax.jit(functools.partial(train_state.create_train_state, config,
                                   train_state.build_networks(config, None), tx))
  state = init(jnp.asarray(host["x"][:2]), None if words is None else jnp.asarray(words[:2]))
  fn = dp.compile(functools.partial(
      train_step.train_step, nets=train_state.build_networks(config, parallel.AXIS), tx=tx,
      schedule=optim.learning_rate(config, steps_per_epoch), config=config))
  state = dp.put_state(state)
  device_batch = dp.put_batch({k: v[None] for k, v in host.items()})
  jax.block_until_ready((state, device_batch))

  start = time.perf_counter()
  state, metrics = fn(state, device_batch)
  jax.block_until_ready((state, metrics))
  first_s = time.perf_counter() - start
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = fn(state, device_batch)
    jax.block_until_ready((state, metrics))
    times.append(time.perf_counter() - start)
  loss = float(np.asarray(metrics["loss"]).ravel()[0])
  if not np.isfinite(loss):
    raise FloatingPointError(f"{row} batch {batch}: non-finite loss {loss}")
  stats = None if jax.default_backend() == "cpu" else jax.devices()[0].memory_stats()
  if stats and "peak_bytes_in_use" in stats:
    peak, memory = stats["peak_bytes_in_use"] / 2**20, "device peak_bytes_in_use"
  else:
    peak, memory = _peak_rss_mib() - rss_before, "growth of the host's peak RSS"
  # XLA's count of the step's floating-point operations (one more compile, not timed).
  flops = (None if jax.default_backend() == "cpu" else
           _cost(fn.lower(state, device_batch).compile()).get("flops"))
  return {"first_s": first_s, "step_s": times, "peak_mib": peak, "memory": memory,
          "flops": flops, "device_kind": jax.devices()[0].device_kind,
          "device": f"{jax.default_backend()} ({jax.devices()[0].device_kind})",
          "jax": jax.__version__}


def _cost(compiled) -> dict:
  """`compiled.cost_analysis()`, one dict (older jax returned a list of one)."""
  cost = compiled.cost_analysis()
  return (cost[0] if isinstance(cost, list) else cost) or {}


def _tflops_column(r: dict, median_s: float, compute_dtype: str) -> str:
  if r["flops"] is None:
    return "n/a (CPU)"
  achieved = r["flops"] / median_s / 1e12
  peak = peak_tflops(r["device_kind"], compute_dtype)
  return f"{achieved:.1f} ({100 * achieved / peak:.1f} % of {peak:.0f})" if peak else (
      f"{achieved:.1f} (peak n/a)")


def _load() -> str:
  return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", default=",".join(ROWS),
                      help=f"comma-separated subset of {','.join(ROWS)}")
  parser.add_argument("--batch", type=int, nargs="+", default=[64, 128])
  parser.add_argument("--frames", type=int, default=50)
  parser.add_argument("--steps", type=int, default=2, help="timed steps after the first")
  parser.add_argument("--backend", default="pmap", choices=("pmap", "shard_map"))
  parser.add_argument("--input_pipeline", action=argparse.BooleanOptionalAction,
                      default=True, help="also run benchmarks/input_pipeline.py")
  parser.add_argument("--kernels", default="auto", choices=("auto", "cpu", "xla"),
                      help="model.kernels")
  parser.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"),
                      help="model.compute_dtype")
  parser.add_argument("--remat", action=argparse.BooleanOptionalAction, default=False,
                      help="model.remat: recompute each ST-GCN block in the backward pass")
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  rows = args.rows.split(",")
  unknown = sorted(set(rows) - set(ROWS))
  if unknown:
    parser.error(f"--rows: unknown {unknown}; choose from {','.join(ROWS)}")
  if args.steps < 1:
    parser.error("--steps must be at least 1")

  model = {"kernels": args.kernels, "compute_dtype": args.compute_dtype, "remat": args.remat}
  if args.child:
    print(json.dumps(measure(rows[0], args.batch[0], args.frames, args.steps, args.backend,
                             model)))
    return

  env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false")
  results = []
  for batch in args.batch:
    for row in rows:
      load_before = _load()
      out = subprocess.run(
          [sys.executable, os.path.abspath(__file__), "--child", "--rows", row, "--batch",
           str(batch), "--frames", str(args.frames), "--steps", str(args.steps),
           "--backend", args.backend, "--kernels", args.kernels, "--compute_dtype",
           args.compute_dtype, "--remat" if args.remat else "--no-remat"],
          check=True, capture_output=True, text=True, env=env)
      result = json.loads(out.stdout.strip().splitlines()[-1])
      result |= {"row": row, "batch": batch, "load": f"{load_before} → {_load()}"}
      results.append(result)
      steps = ", ".join(f"{s:.2f}" for s in result["step_s"])
      print(f"# {row} batch {batch}: steps {steps} s; load {result['load']}", file=sys.stderr,
            flush=True)

  first = results[0]
  print(f"\nMICA pretraining step: {first['device']}, {os.cpu_count()} CPU cores, jax "
        f"{first['jax']}, DataParallel({args.backend!r}) on 1 device, T={args.frames}; "
        f"median of {args.steps} steps after the first; memory = {first['memory']}; "
        f"model.kernels={args.kernels}, compute_dtype={args.compute_dtype}, "
        f"remat={args.remat}\n")
  print("| step | batch | samples/s | s / step (min–max) | first step s (compile + 1 step) | "
        "peak MiB | peak MiB / sample | TFLOP/s (of peak) | load avg 1/5/15 min (before → "
        "after) |")
  print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
  for r in results:
    s = sorted(r["step_s"])
    median = statistics.median(s)
    print(f"| {ROWS[r['row']]} | {r['batch']} | {r['batch'] / median:.1f} | "
          f"{median:.2f} ({s[0]:.2f}–{s[-1]:.2f}) | {r['first_s']:.0f} | {r['peak_mib']:.0f} | "
          f"{r['peak_mib'] / r['batch']:.1f} | "
          f"{_tflops_column(r, median, args.compute_dtype)} | {r['load']} |")

  if args.input_pipeline:
    print()
    sys.stdout.flush()
    subprocess.run([sys.executable, os.path.join(HERE, "input_pipeline.py"), "--num_samples",
                    "4096", "--batch_size", str(args.batch[0]), "--frames", str(args.frames)],
                   check=True)


if __name__ == "__main__":
  main()
