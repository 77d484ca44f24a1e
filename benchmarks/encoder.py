"""Encoder forward and forward+backward time at batch 64, T=50.

Run: `make bench` or `python benchmarks/encoder.py [--batch 64 --frames 50 --repeats 5]`.
Prints a markdown table: compile seconds, median step milliseconds and samples/s, for the
plain ST-GCN and with FreST after the last block.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from freqjax import xla_env  # noqa: E402

xla_env.configure()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from freqjax.models import STGCN  # noqa: E402


def time_fn(fn, *args, repeats: int):
  """(compile seconds, median run seconds) of a jitted fn."""
  start = time.perf_counter()
  jax.block_until_ready(fn(*args))
  compile_s = time.perf_counter() - start
  runs = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    runs.append(time.perf_counter() - start)
  return compile_s, float(np.median(runs))


def main():
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--frames", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=5)
  args = parser.parse_args()

  x = jax.random.normal(jax.random.key(0), (args.batch, 3, args.frames, 25, 2))
  rows = []
  for label, frest_blocks in (("ST-GCN", ()), ("ST-GCN + FreST (block 9)", (9,))):
    model = STGCN(frest_blocks=frest_blocks)
    variables = model.init(jax.random.key(1), x, train=False)
    params, stats = variables["params"], variables["batch_stats"]

    @jax.jit
    def forward(params, stats, x):
      return model.apply({"params": params, "batch_stats": stats}, x, train=False)[0]

    @jax.jit
    def forward_backward(params, stats, x, key):
      def loss(params):
        (h, _), new = model.apply({"params": params, "batch_stats": stats}, x, train=True,
                                  rngs={"dropout": key}, mutable=["batch_stats"])
        return jnp.mean(jnp.square(h)), new
      return jax.grad(loss, has_aux=True)(params)

    for mode, fn, fn_args in (("forward (eval)", forward, (params, stats, x)),
                              ("forward+backward (train)", forward_backward,
                               (params, stats, x, jax.random.key(2)))):
      compile_s, run_s = time_fn(fn, *fn_args, repeats=args.repeats)
      rows.append((label, mode, compile_s, run_s * 1e3, args.batch / run_s))

  load = " ".join(f"{x:.1f}" for x in os.getloadavg())
  print(f"\nbackend: {jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{os.cpu_count()} CPU cores, batch {args.batch}, T={args.frames}, jax {jax.__version__}, "
        f"load average after the runs {load} (1/5/15 min)\n")
  print("| model | pass | compile s | ms / batch | samples/s |")
  print("|---|---|---:|---:|---:|")
  for label, mode, compile_s, ms, rate in rows:
    print(f"| {label} | {mode} | {compile_s:.1f} | {ms:.0f} | {rate:.1f} |")


if __name__ == "__main__":
  main()
