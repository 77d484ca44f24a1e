"""Where the full MICA pretraining step's time goes: its pieces, compiled and timed alone.

  python benchmarks/profile_step.py [--batch 64] [--frames 50] [--repeats 3]
      [--kernels auto|cpu|xla] [--compute_dtype float32|bfloat16]

Each piece of `benchmarks/train_step.py`'s `full` step (FreST after block 9, Feature
Modulation, Modality Harmonizer; the base config) is jitted alone at the step's shapes,
fed the activations the encoder gives, and timed: the median of `--repeats` runs after a
warm-up, next to XLA's count of its floating-point operations (`cost_analysis()` of the
compiled piece). The pieces:

- the two augmented views;
- each ST-GCN block: forward in train mode (the key encoder's pass) plus forward and
  backward (the query encoder's: gradients of the parameters, and of the input from block
  1 on); the second table splits the forward + backward into the graph convolution, the
  9×1 temporal convolution, the residual's 1×1 convolution + BatchNorm (each forward +
  backward alone) and the rest of the block (BatchNorms, ReLUs, dropout, the residual
  sum: the block minus the three);
- FreST after block 9, likewise forward plus forward + backward;
- the MLP head with InfoNCE against the queue, Feature Modulation (projection and loss),
  the harmonizer and its loss: forward + backward;
- the SGD update, the key encoder's EMA and both queue writes;
- for comparison, the whole encoder (forward plus forward + backward) and the whole step
  (one program, as the benchmark times it).

A piece compiled alone misses the fusions across its borders, so the sum of the pieces
is not the whole step; both are printed. jax's profiler traces would give the op times of
the one program but need extra packages to read. A few minutes on an idle 2-core CPU.
"""
import argparse
import functools
import os
import statistics
import sys
import time

import train_step as step_benchmark  # benchmarks/train_step.py, beside this file

import jax  # noqa: E402  (train_step set the XLA flags)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from freqjax import graph, optim  # noqa: E402
from freqjax.data import augment, streams  # noqa: E402
from freqjax.losses import moco  # noqa: E402
from freqjax.losses.feature_modulation import feature_modulation_loss  # noqa: E402
from freqjax.models.batch_norm import BatchNorm  # noqa: E402
from freqjax.models.frest import FreST  # noqa: E402
from freqjax.models.precision import compute_dtype  # noqa: E402
from freqjax.models.stgcn import GraphConv, STGCNBlock, TemporalConv  # noqa: E402
from freqjax.normalize import l2_normalize  # noqa: E402
from freqjax.parallel import row_keys  # noqa: E402
from freqjax.pretraining import state as train_state  # noqa: E402

WORDS = step_benchmark.WORDS


class Timer:
  """Compiles a function for its arguments, then times it: `(median s, XLA's FLOPs)`."""

  def __init__(self, repeats: int):
    self.repeats = repeats

  def __call__(self, fn, *args) -> tuple[float, float]:
    compiled = jax.jit(fn).lower(*args).compile()
    flops = step_benchmark._cost(compiled).get("flops", float("nan"))  # pylint: disable=protected-access
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(self.repeats):
      start = time.perf_counter()
      jax.block_until_ready(compiled(*args))
      times.append(time.perf_counter() - start)
    return statistics.median(times), flops


def forward_backward(apply, argnums):
  """`fn(cotangent, *args)`: the gradients of `<apply(*args)[0], cotangent>` with respect
  to the arguments `argnums` (`apply` returns `(output, anything)`)."""
  def fn(cotangent, *args):
    def differentiated(*chosen):
      full = list(args)
      for i, value in zip(argnums, chosen):
        full[i] = value
      return apply(*full)
    _, vjp, _ = jax.vjp(differentiated, *(args[i] for i in argnums), has_aux=True)
    return vjp(cotangent)
  return fn


def _normal(key, shape, dtype=jnp.float32):
  return jax.random.normal(key, shape, dtype)


def _profile_blocks(encoder, variables, block_inputs, timer, key) -> list[dict]:
  """Per ST-GCN block (and FreST): key forward, query forward + backward, its convolutions."""
  adjacency = jnp.asarray(graph.adjacency(encoder.layout, encoder.strategy))
  params, stats = variables["params"], variables["batch_stats"]
  dtype = block_inputs[0].dtype
  rows = []
  for i, (features, stride) in enumerate(encoder.block_plan()):
    x = block_inputs[i]
    block = STGCNBlock(features, stride, residual=i > 0,
                       dropout=encoder.dropout if i > 0 else 0.0,
                       edge_importance=encoder.edge_importance, bn_momentum=encoder.bn_momentum,
                       init_scheme=encoder.init_scheme, kernels=encoder.kernels)
    p, s = params[f"block{i}"], stats[f"block{i}"]

    def apply_block(p, s, x, rng, block=block):
      return block.apply({"params": p, "batch_stats": s}, x, adjacency, True,
                         rngs={"dropout": rng}, mutable=["batch_stats"])

    y = apply_block(p, s, x, key)[0]
    cotangent = _normal(jax.random.fold_in(key, i), y.shape, y.dtype)
    wrt_x = (2,) if i > 0 else ()  # block 0's input is the data: no gradient
    row = {"name": f"block {i}",
           "shape": f"{x.shape[1]}×{x.shape[-1]} → {y.shape[1]}×{y.shape[-1]}"}
    row["fwd"] = timer(apply_block, p, s, x, key)
    row["fwd_bwd"] = timer(forward_backward(apply_block, (0,) + wrt_x), cotangent, p, s, x, key)

    gcn = GraphConv(features, init_scheme=encoder.init_scheme, kernels=encoder.kernels)

    def apply_gcn(p_gcn, importance, x, gcn=gcn):
      return gcn.apply({"params": p_gcn}, x, adjacency * importance), None

    importance = p.get("edge_importance", jnp.ones_like(adjacency))
    gcn_out = apply_gcn(p["gcn"], importance, x)[0]
    row["gcn"] = timer(forward_backward(apply_gcn, (0, 1) + wrt_x),
                       _normal(key, gcn_out.shape, dtype), p["gcn"], importance, x)

    tcn = TemporalConv(features, block.temporal_kernel, stride,
                       init_scheme=encoder.init_scheme, kernels=encoder.kernels)

    def apply_tcn(p_tcn, h, tcn=tcn):
      return tcn.apply({"params": p_tcn}, h), None

    h = jax.nn.relu(gcn_out)
    row["tcn"] = timer(forward_backward(apply_tcn, (0, 1)), cotangent, p["tcn_conv"], h)

    if "residual_conv" in p:
      conv = TemporalConv(features, 1, stride, init_scheme=encoder.init_scheme,
                          kernels=encoder.kernels)
      bn = BatchNorm(encoder.bn_momentum, init_scheme=encoder.init_scheme,
                     kernels=encoder.kernels)

      def apply_residual(p_conv, p_bn, x, s_bn, conv=conv, bn=bn):
        r = conv.apply({"params": p_conv}, x)
        return bn.apply({"params": p_bn, "batch_stats": s_bn}, r, True, mutable=["batch_stats"])

      row["residual"] = timer(forward_backward(apply_residual, (0, 1, 2)), cotangent,
                              p["residual_conv"], p["residual_bn"], x, s["residual_bn"])
    rows.append(row)

    if f"frest{i}" in params:
      frest = FreST(encoder.frest_spatial, encoder.frest_temporal, encoder.frest_per_frequency,
                    encoder.frest_layer_norm, kernels=encoder.kernels)

      def apply_frest(p_frest, y, frest=frest):
        return frest.apply({"params": p_frest}, y), None

      p_frest = params[f"frest{i}"]
      rows.append({"name": f"FreST after block {i}", "shape": rows[-1]["shape"].split("→")[1],
                   "fwd": timer(apply_frest, p_frest, y),
                   "fwd_bwd": timer(forward_backward(apply_frest, (0, 1)), cotangent, p_frest, y)})
  return rows


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--frames", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--kernels", default="auto", choices=("auto", "cpu", "xla"))
  parser.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"))
  args = parser.parse_args()
  load_before = step_benchmark._load()  # pylint: disable=protected-access

  config = step_benchmark._config(  # pylint: disable=protected-access
      "full", args.batch, args.frames, {"kernels": args.kernels,
                                        "compute_dtype": args.compute_dtype})
  timer = Timer(args.repeats)
  b = args.batch
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal((b, 3, args.frames, 25, 2), dtype=np.float32))
  z_t = l2_normalize(jnp.asarray(rng.standard_normal((b, config.fm.dim), dtype=np.float32)))
  words = jnp.asarray(rng.standard_normal((b, WORDS, config.fm.dim), dtype=np.float32))
  word_mask = jnp.arange(WORDS)[None] < jnp.asarray(rng.integers(3, WORDS + 1, b))[:, None]
  key = jax.random.key(0)

  nets = train_state.build_networks(config, None)
  tx = optim.sgd(config, 40000 // b)
  state = jax.jit(functools.partial(train_state.create_train_state, config, nets, tx))(
      x[:2], words[:2])
  encoder = nets.encoder
  variables = {"params": state.params["encoder"], "batch_stats": state.batch_stats}

  # The whole step first: the reference every piece is a share of.
  run, _, step_flops = step_benchmark.freqjax_step(config, "pmap")
  run()
  step_times = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    run()
    step_times.append(time.perf_counter() - start)
  whole_step = (statistics.median(step_times), step_flops())
  print(f"# whole step: {whole_step[0]:.2f} s", file=sys.stderr, flush=True)

  # Every block's input, as the encoder computes it (in the compute dtype).
  _, captured = encoder.apply(variables, x, train=False, capture_intermediates=True,
                              mutable=["intermediates"])
  captured = captured["intermediates"]
  dtype = compute_dtype(encoder.compute_dtype) or jnp.float32
  data_bn = captured["data_bn"]["__call__"][0]
  block_inputs = [data_bn.reshape(data_bn.shape[0], args.frames, 25, -1).astype(dtype)]
  for i in range(len(encoder.block_plan()) - 1):
    after = captured.get(f"frest{i}", captured[f"block{i}"])["__call__"][0]
    block_inputs.append(after.astype(dtype))
  (h, feature_map), _ = encoder.apply(variables, x, train=True, rngs={"dropout": key},
                                      mutable=["batch_stats"])

  pieces = []  # (name, seconds per step, FLOPs per step)

  def add(name, *timings):
    pieces.append((name, sum(t for t, _ in timings), sum(f for _, f in timings)))
    print(f"# {name}: {1e3 * pieces[-1][1]:.0f} ms", file=sys.stderr, flush=True)

  def views(x, rng):
    rows = jnp.arange(x.shape[0])
    out = []
    for extreme, part in ((config.data.augment.extreme_query, 0), (False, 1)):
      view = augment.view_from_config(config.data.augment, extreme)
      keys = row_keys(jax.random.fold_in(rng, part), rows)
      out.append(streams.to_stream(jax.vmap(view)(keys, x), config.data.stream))
    return out

  add("two augmented views", timer(views, x, key))
  blocks = _profile_blocks(encoder, variables, block_inputs, timer, key)
  for row in blocks:
    add(f"{row['name']}: key forward + query forward and backward", row["fwd"],
        row["fwd_bwd"])

  k = l2_normalize(_normal(key, (b, config.model.mlp_dim)))

  def instance_loss(mlp_params, h):
    q = l2_normalize(nets.mlp.apply({"params": mlp_params}, h))
    return moco.info_nce(q, k, state.queue, config.moco.temperature)[0], None

  add("MLP head + InfoNCE (queue 32768), forward and backward",
      timer(forward_backward(instance_loss, (0, 1)), jnp.float32(1), state.params["mlp"], h))

  def fm_loss(projection_params, h, rng):
    z_q = l2_normalize(nets.projection.apply({"params": projection_params}, h))
    return feature_modulation_loss(z_q, z_t, state.text_queue, rng, config.fm.tau_s,
                                   config.fm.tau_t, config.fm.noise_std), None

  add("Feature Modulation: projection + loss, forward and backward",
      timer(forward_backward(fm_loss, (0, 1)), jnp.float32(1), state.params["projection"], h,
            key))

  def harmonizer_loss(harmonizer_params, feature_map, rng):
    frames = jnp.mean(feature_map, axis=(1, 3))
    z_h = nets.harmonizer.apply({"params": harmonizer_params}, frames, words, word_mask,
                                train=True, rngs={"dropout": rng})
    return feature_modulation_loss(z_h, z_t, state.text_queue, rng, config.fm.tau_s,
                                   config.fm.tau_t, config.fm.noise_std), None

  add("Modality Harmonizer + its loss, forward and backward",
      timer(forward_backward(harmonizer_loss, (0, 1)), jnp.float32(1),
            state.params["harmonizer"], feature_map, key))

  def update(state, grads, k):
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(jnp.add, state.params, updates)
    key_params = moco.momentum_update(
        state.key_params, {"encoder": params["encoder"], "mlp": params["mlp"]},
        config.moco.momentum)
    queue = moco.enqueue(state.queue, state.queue_ptr, k)
    text_queue = moco.enqueue(state.text_queue, state.text_queue_ptr, z_t,
                              config_field="fm.text_queue_size")
    return params, opt_state, key_params, queue, text_queue

  add("SGD update + key EMA + queue writes", timer(update, state, state.params, k))

  def encoder_forward(params, stats, x, rng):
    return encoder.apply({"params": params, "batch_stats": stats}, x, train=True,
                         rngs={"dropout": rng}, mutable=["batch_stats"])

  encoder_fwd = timer(encoder_forward, variables["params"], variables["batch_stats"], x, key)
  encoder_fwd_bwd = timer(forward_backward(encoder_forward, (0,)),
                          (jnp.ones_like(h), jnp.ones_like(feature_map)), variables["params"],
                          variables["batch_stats"], x, key)
  load = f"{load_before} → {step_benchmark._load()}"  # pylint: disable=protected-access

  step_s = whole_step[0]

  def line(name, seconds, flops):
    gflops = flops / 1e9
    rate = f"{gflops / seconds:.0f}" if np.isfinite(gflops) and seconds > 0 else "–"
    print(f"| {name} | {1e3 * seconds:.0f} | {100 * seconds / step_s:.1f} | {gflops:.2f} | "
          f"{rate} |")

  print(f"\nThe full MICA step's pieces, each compiled alone: batch {b}, T={args.frames}, "
        f"{jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{step_benchmark._cpu_description()}, {os.cpu_count()} cores, jax "  # pylint: disable=protected-access
        f"{jax.__version__}, model.kernels={encoder.kernels}, compute_dtype="
        f"{args.compute_dtype}; median of {args.repeats} runs; load avg 1/5/15 min {load}\n")
  print("| piece | ms / step | % of the whole step | GFLOP / step (XLA) | GFLOP/s |")
  print("|---|---:|---:|---:|---:|")
  for piece in pieces:
    line(*piece)
  line("**sum of the pieces**", sum(p[1] for p in pieces), sum(p[2] for p in pieces))
  line("**whole step, one program**", *whole_step)
  block_rows = [p for p in pieces if p[0].startswith(("block", "FreST"))]
  line("sum of the blocks and FreST above", sum(p[1] for p in block_rows),
       sum(p[2] for p in block_rows))
  line("whole encoder, key forward + query forward and backward",
       encoder_fwd[0] + encoder_fwd_bwd[0], encoder_fwd[1] + encoder_fwd_bwd[1])

  print("\nInside the blocks: the query's forward + backward, split by convolution (each "
        "alone); `rest` = the block minus its convolutions (BatchNorms, ReLUs, dropout, "
        "residual sum); ms (GFLOP/s)\n")
  print("| block | frames × channels | key forward | forward + backward | graph conv | "
        "temporal conv 9×1 | residual 1×1 conv + BN | rest |")
  print("|---|---|---:|---:|---:|---:|---:|---:|")

  def cell(timing):
    seconds, flops = timing
    return f"{1e3 * seconds:.0f} ({flops / 1e9 / seconds:.0f})"

  for row in blocks:
    convs = [row[name] for name in ("gcn", "tcn", "residual") if name in row]
    rest = row["fwd_bwd"][0] - sum(t for t, _ in convs)
    print(f"| {row['name']} | {row['shape']} | {cell(row['fwd'])} | {cell(row['fwd_bwd'])} | "
          + " | ".join(cell(row[name]) if name in row else "–"
                       for name in ("gcn", "tcn", "residual"))
          + (f" | {1e3 * rest:.0f} |" if convs else " | – |"))

  top = sorted(pieces, key=lambda p: -p[1])[:5]
  print("\nLargest pieces: " + "; ".join(f"{name} {100 * s / step_s:.0f} %"
                                         for name, s, _ in top))


if __name__ == "__main__":
  main()
