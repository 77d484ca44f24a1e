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

Side by side with PyTorch (when torch is installed, `--compare auto`; `only` skips the
table above, `off` the comparison): one more subprocess per batch size runs the PyTorch
SkeletonCLR step of the tests (`tests/helpers/torch_skeletonclr.py`, written from AimCLR's
code: ST-GCN MoCo with the MLP head, EMA key encoder, queue, `torch.optim.SGD` with
momentum and weight decay; float32, the base config's widths, dropout, queue and
optimizer) and freqjax's steps of `--rows`, at the same batch and input sizes, in turns:
`--rounds` rounds, each `--steps` steps of every step (order reversed every other round),
after one warm-up step each. PyTorch runs on `--torch_threads` threads (default: every
core, `torch.set_num_threads(os.cpu_count())`); several counts give one PyTorch row each.
The table gives each step's median samples/s over all rounds and freqjax's ratio to the
fastest PyTorch row: the median samples/s over its, and the lowest and highest ratio of
one round's medians. Taken in one process and in turns, the ratio holds under a load that
changes slowly; the absolute numbers do not. A competing process hurts PyTorch on every
core more than XLA: its OpenMP threads split each operation evenly and wait for the
slowest, so on a busy machine one PyTorch thread can beat two (give `--torch_threads 2
1`). The PyTorch step gets its two views already augmented (the reference augments in
its data loader); freqjax's step augments both views itself (a few milliseconds of a
batch of 64, `benchmarks/input_pipeline.py`). `--max_isa avx2` caps PyTorch's (oneDNN,
ATen, MKL) and XLA's vector instructions at AVX2, for an AVX-512 machine to stand in for
an AVX2 one (the vector width only, not the caches or the clock).

The C allocator changes both steps' speed: with glibc's own settings every step faults in
its large buffers anew (PyTorch's ~700,000 pages a step at batch 64, freqjax's ~330,000),
and freqjax's entry points, this benchmark included, set glibc to keep freed memory
instead (`freqjax.xla_env.reuse_freed_memory`), for the whole process. `--malloc reuse
glibc` runs every table once per setting (`FREQJAX_MALLOC` of the subprocesses), so each
ratio compares the two steps under the same allocator.

  python benchmarks/train_step.py [--rows full,plain] [--batch 64 128] [--steps 2]
      [--compare auto|only|off] [--rounds 3] [--torch_threads 2 1] [--max_isa avx2]
      [--no-input_pipeline] [--kernels auto|cpu|xla] [--compute_dtype float32|bfloat16]
      [--remat] [--malloc reuse glibc]

Where the full step's time goes: `benchmarks/profile_step.py`.

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
import functools
import importlib.util
import json
import math
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
PYTORCH_ROW = ("SkeletonCLR step (plain ST-GCN MoCo), AimCLR's code as "
               "tests/helpers/torch_skeletonclr.py")
WORDS = 20
HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")  # the PyTorch references live there

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


def _config(row: str, batch: int, frames: int, model: dict, base=None):
  """`base` (default: `configs/pretrain.py`'s base config) set to `row`, `batch`, `frames`
  and the `model` fields."""
  from configs import pretrain  # pylint: disable=import-outside-toplevel
  config = (base or pretrain.base_config()).copy_and_resolve_references()
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


def freqjax_step(config, backend: str):
  """freqjax's pretraining step for `config` on one device, with random inputs.

  Returns:
    `(run, rss_before_mib, compile_step)`: `run()` runs one step on the step's own train
    state (the first call compiles), waits for it and returns the loss; `rss_before_mib`
    is the process's peak RSS just before the train state was built; `compile_step()`
    compiles the step once more and returns the `jax.stages.Compiled` (its FLOP count,
    its HLO).
  """
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import numpy as np  # pylint: disable=import-outside-toplevel

  from freqjax import optim, parallel  # pylint: disable=import-outside-toplevel
  from freqjax.pretraining import state as train_state  # pylint: disable=import-outside-toplevel
  from freqjax.pretraining import step as train_step  # pylint: disable=import-outside-toplevel

  batch, frames = config.optim.batch_size, config.data.num_frames
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

  def run() -> float:
    nonlocal state
    state, metrics = fn(state, device_batch)
    jax.block_until_ready((state, metrics))
    return float(np.asarray(metrics["loss"]).ravel()[0])

  def compile_step():
    return fn.lower(state, device_batch).compile()

  return run, rss_before, compile_step


def pytorch_step(config, threads: int):
  """The PyTorch SkeletonCLR step of the tests at `config`'s sizes, with random inputs.

  The one PyTorch reference of the project, `tests/helpers/torch_skeletonclr.py` (its
  ST-GCN: `tests/helpers/torch_stgcn.py`), imported from `tests/`: query and key encoders
  of `config.model`'s widths and dropout, queue `config.moco`, `torch.optim.SGD` with
  `config.optim`'s momentum, weight decay and the learning rate scaled to the batch;
  float32 on `threads` threads. The two views are random, standing for views the data
  loader augmented.

  Returns:
    `run()`: one training iteration, returning the loss (`functools.partial` of the
    reference's `train_step`: `run.args[:2]` are the model and its optimizer).
  """
  if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
  import numpy as np  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel
  from helpers import torch_skeletonclr  # pylint: disable=import-outside-toplevel
  from helpers.torch_stgcn import random_state_dict, stgcn_shapes  # pylint: disable=import-outside-toplevel

  torch.set_num_threads(threads)
  m, batch = config.model, config.optim.batch_size
  rng = np.random.default_rng(0)
  stgcn = random_state_dict(0, stgcn_shapes(m.hidden_channels, m.hidden_dim))
  head = torch_skeletonclr.random_head_state(m.hidden_dim, m.mlp_dim, seed=1)
  queue = rng.standard_normal((m.mlp_dim, config.moco.queue_size), dtype=np.float32)
  model = torch_skeletonclr.skeletonclr(
      stgcn | head, stgcn | head, queue / np.linalg.norm(queue, axis=0),
      temperature=config.moco.temperature, momentum=config.moco.momentum, dropout=m.dropout)
  optimizer = torch.optim.SGD(
      [p for p in model.parameters() if p.requires_grad],
      lr=config.optim.base_lr * batch / 128, momentum=config.optim.momentum,
      weight_decay=config.optim.weight_decay, nesterov=config.optim.nesterov)
  views = [torch.from_numpy(rng.standard_normal((batch, 3, config.data.num_frames, 25, 2),
                                                dtype=np.float32)) for _ in range(2)]
  return functools.partial(torch_skeletonclr.train_step, model, optimizer, *views)


def _checked(name: str, loss: float) -> float:
  if not math.isfinite(loss):
    raise FloatingPointError(f"{name}: non-finite loss {loss}")
  return loss


def measure(row: str, batch: int, frames: int, steps: int, backend: str, model: dict) -> dict:
  """Times one variant in this process: first step, timed steps, peak memory."""
  import jax  # pylint: disable=import-outside-toplevel

  run, rss_before, compile_step = freqjax_step(_config(row, batch, frames, model), backend)
  start = time.perf_counter()
  run()
  first_s = time.perf_counter() - start
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    loss = run()
    times.append(time.perf_counter() - start)
  _checked(f"{row} batch {batch}", loss)
  stats = None if jax.default_backend() == "cpu" else jax.devices()[0].memory_stats()
  if stats and "peak_bytes_in_use" in stats:
    peak, memory = stats["peak_bytes_in_use"] / 2**20, "device peak_bytes_in_use"
  else:
    peak, memory = _peak_rss_mib() - rss_before, "growth of the host's peak RSS"
  return {"first_s": first_s, "step_s": times, "peak_mib": peak, "memory": memory,
          # XLA's count of the step's floating-point operations (one more compile).
          "flops": (None if jax.default_backend() == "cpu" else
                    _cost(compile_step()).get("flops")),
          "device_kind": jax.devices()[0].device_kind,
          "device": f"{jax.default_backend()} ({jax.devices()[0].device_kind})",
          "jax": jax.__version__}


def _on_threads(threads: int, run) -> float:
  """`run()` after setting torch's thread count, which is global to the process."""
  import torch  # pylint: disable=import-outside-toplevel
  torch.set_num_threads(threads)
  return run()


def compare(rows: list[str], batch: int, frames: int, steps: int, rounds: int, backend: str,
            model: dict, torch_threads: tuple[int, ...] = (), base=None) -> dict:
  """PyTorch's SkeletonCLR step and freqjax's `rows` in this process, in turns.

  After one warm-up step each (freqjax's compiles), `rounds` rounds of `steps` steps of
  every step, the order reversed every other round.

  Args:
    torch_threads: one PyTorch step (its own model) per thread count; default
      `(os.cpu_count(),)`.
    base: the config the steps start from (default: the base config).

  Returns:
    `{"step_s": {name: [[s, ...] per round]}, "first_s": {name: s}, ...}`; names
    `"pytorch@<threads>"` and the rows.
  """
  import jax  # pylint: disable=import-outside-toplevel
  import torch  # pylint: disable=import-outside-toplevel

  runs = {}
  for threads in torch_threads or (os.cpu_count(),):
    run = pytorch_step(_config("plain", batch, frames, model, base), threads)
    runs[f"pytorch@{threads}"] = functools.partial(_on_threads, threads, run)
  for row in rows:
    runs[row] = freqjax_step(_config(row, batch, frames, model, base), backend)[0]
  first_s = {}
  for name, run in runs.items():
    start = time.perf_counter()
    _checked(name, run())
    first_s[name] = time.perf_counter() - start
  step_s = {name: [] for name in runs}
  for r in range(rounds):
    for name in list(runs) if r % 2 == 0 else list(runs)[::-1]:
      times = []
      for _ in range(steps):
        start = time.perf_counter()
        loss = runs[name]()
        times.append(time.perf_counter() - start)
      _checked(name, loss)
      step_s[name].append(times)
  return {"step_s": step_s, "first_s": first_s, "torch": torch.__version__,
          "jax": jax.__version__,
          "device": f"{jax.default_backend()} ({jax.devices()[0].device_kind})"}


def side_by_side_rows(result: dict, batch: int) -> list[dict]:
  """Per step of `compare`'s result: median samples/s over all its steps, min/median/max
  seconds, and for freqjax's rows the ratio to the fastest PyTorch step (`reference`
  names it): medians over all rounds, and the lowest and highest ratio of one round's
  medians."""
  def rate(times):
    return batch / statistics.median(times)

  every = {name: sorted(t for times in rounds for t in times)
           for name, rounds in result["step_s"].items()}
  reference = max((name for name in every if name.startswith("pytorch@")),
                  key=lambda name: rate(every[name]))
  out = []
  for name, rounds in result["step_s"].items():
    row = {"name": name, "samples_per_s": rate(every[name]),
           "median_s": statistics.median(every[name]), "min_s": every[name][0],
           "max_s": every[name][-1], "first_s": result["first_s"][name],
           "reference": reference}
    if not name.startswith("pytorch@"):
      per_round = [rate(mine) / rate(theirs)
                   for mine, theirs in zip(rounds, result["step_s"][reference])]
      row |= {"ratio": rate(every[name]) / rate(every[reference]),
              "ratio_min": min(per_round), "ratio_max": max(per_round)}
    out.append(row)
  return out


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


def _cpu_description(max_isa: str = "native") -> str:
  """The CPU's model name and its widest vector extension, from /proc/cpuinfo."""
  try:
    info = open("/proc/cpuinfo").read()
  except OSError:
    return "CPU model unknown"
  name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
               if line.startswith("model name")), "CPU model unknown")
  flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                    if line.startswith("flags")), []))
  widest = next((isa for isa in ("avx512f", "avx2", "avx") if isa in flags), "no AVX")
  capped = " capped at AVX2 (--max_isa)" if max_isa == "avx2" else ""
  return f"{name}, {widest.upper()}{capped}"


def _malloc_description(env: dict) -> str:
  setting = env.get(xla_env.MALLOC_ENV, "reuse")
  return f"{xla_env.MALLOC_ENV}={setting} ({xla_env.MALLOC_CHOICES[setting]})"


def _child_args(args, rows: str, batch: int) -> list[str]:
  return [sys.executable, os.path.abspath(__file__), "--rows", rows, "--batch", str(batch),
          "--frames", str(args.frames), "--steps", str(args.steps), "--rounds",
          str(args.rounds), "--backend", args.backend, "--kernels", args.kernels,
          "--compute_dtype", args.compute_dtype, "--remat" if args.remat else "--no-remat"]


def _isolated_table(args, rows: list[str], env: dict) -> None:
  """Each row in a fresh subprocess: compile seconds, samples/s, peak memory."""
  results = []
  for batch in args.batch:
    for row in rows:
      load_before = _load()
      out = subprocess.run(_child_args(args, row, batch) + ["--child"], check=True,
                           capture_output=True, text=True, env=env)
      result = json.loads(out.stdout.strip().splitlines()[-1])
      result |= {"row": row, "batch": batch, "load": f"{load_before} → {_load()}"}
      results.append(result)
      steps = ", ".join(f"{s:.2f}" for s in result["step_s"])
      print(f"# {row} batch {batch}: steps {steps} s; load {result['load']}", file=sys.stderr,
            flush=True)

  first = results[0]
  print(f"\nMICA pretraining step: {first['device']}, {_cpu_description(args.max_isa)}, "
        f"{os.cpu_count()} CPU cores, jax {first['jax']}, DataParallel({args.backend!r}) on "
        f"1 device, T={args.frames}; each row in its own process, median of {args.steps} "
        f"steps after the first; memory = {first['memory']}; model.kernels={args.kernels}, "
        f"compute_dtype={args.compute_dtype}, remat={args.remat}; "
        f"{_malloc_description(env)}\n")
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


def _side_by_side_table(args, rows: list[str], env: dict) -> None:
  """PyTorch's SkeletonCLR step and freqjax's rows in one subprocess per batch, in turns."""
  for batch in args.batch:
    load_before = _load()
    command = _child_args(args, ",".join(rows), batch) + ["--child_compare", "--torch_threads",
                                                          *map(str, args.torch_threads)]
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    load = f"{load_before} → {_load()}"
    table = side_by_side_rows(result, batch)
    reference = table[0]["reference"]
    reference_rate = next(r["samples_per_s"] for r in table if r["name"] == reference)
    print(f"\nSide by side, one process, batch {batch}, T={args.frames}: PyTorch "
          f"{result['torch']} (float32) and freqjax (jax {result['jax']}, {result['device']}, "
          f"model.kernels={args.kernels}, compute_dtype={args.compute_dtype}); "
          f"{_cpu_description(args.max_isa)}, {os.cpu_count()} cores; {args.rounds} rounds of "
          f"{args.steps} steps of each step in turn (order reversed every other round), "
          f"after one warm-up step each; {_malloc_description(env)}; load avg 1/5/15 min "
          f"{load}. Ratios: freqjax's "
          f"samples/s over those of the fastest PyTorch row ({reference}).\n")
    print("| step | samples/s (median) | s / step, median (min–max) | warm-up step s | "
          f"× {reference}: median (per-round min–max) |")
    print("|---|---:|---:|---:|---|")
    for r in table:
      if r["name"].startswith("pytorch@"):
        threads = r["name"].split("@")[1]
        label = f"PyTorch, {threads} thread{'s' * (threads != '1')}: {PYTORCH_ROW}"
        ratio = ("1 (the reference)" if r["name"] == reference else
                 f"{r['samples_per_s'] / reference_rate:.2f}×")
      else:
        label = f"freqjax: {ROWS[r['name']]}"
        ratio = f"**{r['ratio']:.2f}×** ({r['ratio_min']:.2f}–{r['ratio_max']:.2f})"
      print(f"| {label} | {r['samples_per_s']:.1f} | {r['median_s']:.2f} ({r['min_s']:.2f}–"
            f"{r['max_s']:.2f}) | {r['first_s']:.0f} | {ratio} |")
    sys.stdout.flush()


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", default=",".join(ROWS),
                      help=f"comma-separated subset of {','.join(ROWS)}")
  parser.add_argument("--batch", type=int, nargs="+", default=[64, 128])
  parser.add_argument("--frames", type=int, default=50)
  parser.add_argument("--steps", type=int, default=2,
                      help="timed steps after the first (side by side: per round)")
  parser.add_argument("--compare", default="auto", choices=("auto", "only", "off"),
                      help="the PyTorch step side by side: auto = when torch is installed, "
                      "only = without the table of isolated runs, off")
  parser.add_argument("--rounds", type=int, default=3, help="side by side: rounds of turns")
  parser.add_argument("--torch_threads", type=int, nargs="+", default=[os.cpu_count()],
                      help="side by side: one PyTorch step per thread count (the ratios are "
                      "to the fastest)")
  parser.add_argument("--max_isa", default="native", choices=("native", "avx2"),
                      help="cap the vector instructions of PyTorch (oneDNN, ATen, MKL) and "
                      "XLA at AVX2 in the runs (an AVX-512 CPU standing in for an AVX2 one)")
  parser.add_argument("--backend", default="pmap", choices=("pmap", "shard_map"))
  parser.add_argument("--input_pipeline", action=argparse.BooleanOptionalAction,
                      default=True, help="also run benchmarks/input_pipeline.py")
  parser.add_argument("--kernels", default="auto", choices=("auto", "cpu", "xla"),
                      help="model.kernels")
  parser.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"),
                      help="model.compute_dtype")
  parser.add_argument("--remat", action=argparse.BooleanOptionalAction, default=False,
                      help="model.remat: recompute each ST-GCN block in the backward pass")
  parser.add_argument("--malloc", nargs="+", choices=xla_env.MALLOC_CHOICES,
                      default=[os.environ.get(xla_env.MALLOC_ENV, "reuse")], metavar="MALLOC",
                      help="the C allocator's settings (FREQJAX_MALLOC), one set of tables "
                      "each: reuse = keep freed memory (freqjax's default), glibc = glibc's own")
  parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  parser.add_argument("--child_compare", action="store_true", help=argparse.SUPPRESS)
  args = parser.parse_args()
  rows = args.rows.split(",")
  unknown = sorted(set(rows) - set(ROWS))
  if unknown:
    parser.error(f"--rows: unknown {unknown}; choose from {','.join(ROWS)}")
  if min(args.steps, args.rounds, *args.torch_threads) < 1:
    parser.error("--steps, --rounds and --torch_threads must be at least 1")
  has_torch = all(importlib.util.find_spec(m) for m in ("torch", "pytest"))
  if args.compare == "only" and not has_torch:
    parser.error("--compare only needs torch (and pytest, which the tests' PyTorch "
                 "reference imports); install them or use --compare off")

  model = {"kernels": args.kernels, "compute_dtype": args.compute_dtype, "remat": args.remat}
  if args.child:
    print(json.dumps(measure(rows[0], args.batch[0], args.frames, args.steps, args.backend,
                             model)))
    return
  if args.child_compare:
    print(json.dumps(compare(rows, args.batch[0], args.frames, args.steps, args.rounds,
                             args.backend, model, tuple(args.torch_threads))))
    return

  env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false")
  if args.max_isa == "avx2":
    env |= {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
            "MKL_ENABLE_INSTRUCTIONS": "AVX2",
            "XLA_FLAGS": f"{env.get('XLA_FLAGS', '')} --xla_cpu_max_isa=AVX2".strip()}
  for malloc in args.malloc:
    env[xla_env.MALLOC_ENV] = malloc
    if args.compare != "only":
      _isolated_table(args, rows, env)
    if args.compare != "off":
      if has_torch:
        _side_by_side_table(args, rows, env)
      else:
        print("\n(No PyTorch step side by side: torch or pytest is not installed.)")

  if args.input_pipeline:
    print()
    sys.stdout.flush()
    subprocess.run([sys.executable, os.path.join(HERE, "input_pipeline.py"), "--num_samples",
                    "4096", "--batch_size", str(args.batch[0]), "--frames", str(args.frames)],
                   check=True)


if __name__ == "__main__":
  main()
