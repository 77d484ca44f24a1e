"""Where the full MICA pretraining step's time goes: a per-op profile, and its pieces alone.

  python benchmarks/profile_step.py [--batch 64] [--frames 50] [--repeats 3]
      [--trace_steps 2] [--no-pieces] [--kernels auto|cpu|xla]
      [--compute_dtype float32|bfloat16]

The step is `benchmarks/train_step.py`'s `full` row (FreST after block 9, Feature
Modulation, Modality Harmonizer; the base config), at batch `--batch`, T=`--frames`.

Per-op profile: `--trace_steps` steps of the compiled step run under `jax.profiler`;
jaxlib's own `ProfileData` reads the trace (no extra package). XLA:CPU runs the program
as one thunk per HLO instruction (a fusion, a convolution, a dot...) and records each
thunk with the instruction's name, and the end of the asynchronous ones (convolutions,
matrix products); the step's HLO names, for each instruction, the jax operation it came
from (`metadata.op_name`, e.g. `jvp(STGCN)/block9/tcn_conv/conv_general_dilated`).
Thunks overlap, so each moment is shared among the thunks in flight. The tables sum
these seconds by the module the operation belongs to (each block's graph convolution,
temporal convolution, residual convolution, BatchNorms, dropout and the rest; FreST's
branches, each with its LayerNorm; the heads and the harmonizer; everything outside the
modules: losses, optimizer, EMA, queues, augmentation) and by pass, read from the name:
the key encoder's forward (no `jvp`), the query's forward (`jvp`) and the backward
(`transpose`; the CPU kernels' hand-written backward passes are named like their
forward, so they count as forward). Instructions XLA made itself (layout copies and
transposes, convolutions rewritten for weight gradients) have no source name and are
listed by their own.

Pieces alone (`--pieces`, the default): each piece is jitted alone at the step's shapes,
fed the activations the encoder gives, and timed (median of `--repeats` runs after a
warm-up) next to XLA's count of its floating-point operations (`cost_analysis()`): the
two views; each ST-GCN block's key forward plus query forward and backward, split into
its graph convolution, 9×1 temporal convolution, residual 1×1 convolution + BatchNorm
(each forward + backward) and the rest of the block; FreST; the MLP head + InfoNCE,
Feature Modulation, the harmonizer and its loss; the SGD update, EMA and queue writes;
and for comparison the whole encoder. A piece compiled alone misses the fusions across
its borders: the sum of the pieces is printed next to the whole step.

About 10 minutes on an idle 2-core CPU, most of it compiles.
"""
import argparse
import collections
import functools
import glob
import os
import re
import statistics
import sys
import tempfile
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


_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=\s*(.*)$", re.M)
_OP_NAME = re.compile(r'op_name="([^"]*)"')


def source_op_names(hlo_text: str) -> dict[str, str]:
  """HLO instruction name → the jax operation it came from (`metadata.op_name`); absent
  for instructions XLA made while optimising (layout copies and transposes, convolutions
  rewritten for a weight gradient)."""
  names = {}
  for name, rest in _INSTRUCTION.findall(hlo_text):
    op_name = _OP_NAME.search(rest)
    if op_name:
      names[name] = op_name.group(1)
  return names


OUTSIDE = "outside the modules: losses, optimizer, EMA, queues, views"
ARGUMENT = "flat_args"  # jax's op_name of the step's arguments
NAMELESS = "made by XLA"
_BLOCK_PARTS = {"gcn": "graph conv", "tcn_conv": "temporal conv 9×1",
                "residual_conv": "residual conv 1×1", "tcn_bn1": "BatchNorms",
                "tcn_bn2": "BatchNorms", "residual_bn": "BatchNorms"}


# Ops of a block outside its submodules that draw or apply the dropout mask: the random
# bits (threefry rounds, the key's fold-in), the comparison, the select, `x / (1 − rate)`.
_DROPOUT = ("threefry", "random_bits", "iota_2x32", "while", "xor", "shift_", "select_n",
            "bitcast_convert")


def group_of(op_name: str, instruction: str = "") -> tuple[str, str]:
  """`(module, kind)` of an HLO instruction from its source op's name: e.g. `("block 9",
  "temporal conv 9×1")`, `("FreST after block 9", "FreS (joints)")`; an instruction
  without one by its own name (`convolution.23` → `convolution`)."""
  name = op_name.split(";")[0]
  if not name:
    return NAMELESS, re.sub(r"[.]\d+$", "", instruction or "?") + " (no source op)"
  if name.startswith(ARGUMENT):
    return ("copies of the step's arguments (state, queues, batch)",) * 2
  block = re.search(r"/block(\d+)/(?:(gcn|tcn_conv|residual_conv|tcn_bn1|tcn_bn2|residual_bn)/)?",
                    name)
  if block:
    rest = name[block.end():]
    kind = _BLOCK_PARTS.get(block.group(2)) or (
        "dropout" if any(marker in rest for marker in _DROPOUT) or rest in ("ge", "div")
        else "ReLU, residual sum, edge importance")
    return f"block {block.group(1)}", kind
  frest = re.search(r"/frest(\d+)/", name)
  if frest:
    kind = ("FreS (joints)" if "/fres/" in name or "spatial_norm" in name else
            "FreT (frames)" if "/fret/" in name or "temporal_norm" in name else "FreST sum")
    return f"FreST after block {frest.group(1)}", kind
  for module, label in (("data_bn", "data BatchNorm"), ("ModalityHarmonizer", "Modality Harmonizer"),
                        ("MLPHead", "MLP head"), ("Projection", "FM projection")):
    if module in name:
      return label, label
  return OUTSIDE, OUTSIDE


def pass_of(op_name: str) -> str:
  """The pass an instruction belongs to, read from its name (see the module docstring)."""
  if not op_name:
    return "unknown"
  if "transpose(" in op_name:
    return "backward"
  return "query forward" if "jvp(" in op_name else "key forward / no gradient"


def thunk_seconds(trace_dir: str, module: str) -> collections.Counter:
  """Seconds per HLO instruction of the XLA module `module` in a `jax.profiler` trace.

  XLA:CPU records each thunk as an event named after its instruction, and its completion
  as an event `end: <instruction>` holding the thunk's id: a convolution or a matrix
  product runs asynchronously on the thread pool after its thunk event has ended, so a
  thunk lasts from its start to its completion. Thunks overlap (independent ones run
  concurrently, and an asynchronous one may wait in the pool's queue), so each moment
  is shared equally among the thunks in flight: the seconds sum to the time during which
  any thunk was in flight.
  """
  paths = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
  data = jax.profiler.ProfileData.from_file(paths[0])
  thunks, ends = [], {}
  for plane in data.planes:
    for line in plane.lines:
      for event in line.events:
        stats = dict(event.stats)
        if event.name.startswith("end: ") and "_c" in stats:
          ends[stats["_c"]] = event.start_ns
        elif stats.get("hlo_module") == module and "hlo_op" in stats:
          thunks.append((stats["hlo_op"], stats.get("_p"), event.start_ns, event.duration_ns))
  intervals = []
  for instruction, thunk_id, start, duration in thunks:
    end = max(start + duration, ends.get(thunk_id, 0) if thunk_id is not None else 0)
    intervals.append((instruction, start * 1e-9, end * 1e-9))
  return shared_seconds(intervals)


def shared_seconds(intervals: list[tuple[str, float, float]]) -> collections.Counter:
  """Seconds per name of `(name, start, end)` intervals, each moment shared equally among
  the intervals that cover it; they sum to the time any interval covers."""
  boundaries = sorted([(start, 1, name) for name, start, _ in intervals]
                      + [(end, -1, name) for name, _, end in intervals],
                      key=lambda b: (b[0], b[1]))
  seconds, in_flight, last = collections.Counter(), collections.Counter(), 0.0
  for time_s, change, name in boundaries:
    count = sum(in_flight.values())
    if count and time_s > last:
      for running, n in in_flight.items():
        seconds[running] += (time_s - last) * n / count
    in_flight[name] += change
    if not in_flight[name]:
      del in_flight[name]
    last = time_s
  return seconds


def per_op_profile(run, hlo_text: str, steps: int) -> tuple[collections.Counter, dict, list]:
  """`steps` runs of the step under `jax.profiler`: `(seconds per instruction over all the
  steps, op_name per instruction, wall seconds of each step)`."""
  module = re.match(r"HloModule (\S+?),", hlo_text).group(1)
  op_names = source_op_names(hlo_text)
  with tempfile.TemporaryDirectory() as trace_dir:
    jax.profiler.start_trace(trace_dir)
    wall = []
    for _ in range(steps):
      start = time.perf_counter()
      run()
      wall.append(time.perf_counter() - start)
    jax.profiler.stop_trace()
    seconds = thunk_seconds(trace_dir, module)
  if not seconds:
    raise RuntimeError(f"The trace holds no thunk of module {module}: this jaxlib does not "
                       "record XLA:CPU thunks; use the pieces table.")
  return seconds, op_names, wall


def _print_per_op(seconds, op_names, wall, steps) -> None:
  total = sum(seconds.values()) / steps
  passes = ("key forward / no gradient", "query forward", "backward", "unknown")
  by_group = collections.defaultdict(collections.Counter)
  by_kind = collections.Counter()
  for instruction, s in seconds.items():
    op_name = op_names.get(instruction, "")
    module, kind = group_of(op_name, instruction)
    by_group[(module, kind)][pass_of(op_name)] += s / steps
    by_kind[kind] += s / steps
  print(f"\nPer-op profile of the whole step: seconds of XLA's thunks of {len(seconds)} "
        f"instructions (start to completion, each moment shared among the thunks in "
        f"flight), per step, the mean of {steps} traced steps; thunks in flight "
        f"{total:.2f} s of a wall time of {statistics.mean(wall):.2f} s; % of the "
        f"former\n")
  print("| kind, all blocks together | ms / step | % |")
  print("|---|---:|---:|")
  for kind, s in by_kind.most_common():
    print(f"| {kind} | {1e3 * s:.0f} | {100 * s / total:.1f} |")
  print("\n| module: kind | key forward | query forward | backward | pass unknown | "
        "ms / step | % |")
  print("|---|---:|---:|---:|---:|---:|---:|")
  rows = sorted(by_group.items(), key=lambda item: -sum(item[1].values()))
  small = 0.0
  for (module, kind), split in rows:
    s = sum(split.values())
    if s < 0.005 * total:
      small += s
      continue
    label = module if module == kind else f"{module}: {kind}"
    print(f"| {label} | " + " | ".join(f"{1e3 * split[p]:.0f}" for p in passes)
          + f" | {1e3 * s:.0f} | {100 * s / total:.1f} |")
  print(f"| (the rest, under 0.5 % each) | | | | | {1e3 * small:.0f} | "
        f"{100 * small / total:.1f} |")
  print("\nLargest instructions (ms / step, source op):")
  for instruction, s in seconds.most_common(12):
    print(f"  {1e3 * s / steps:6.0f}  {instruction}: {op_names.get(instruction, '?')[:140]}")


def profile_pieces(args, config, whole_step: tuple[float, float]) -> None:
  """Times the step's pieces alone and prints them against `whole_step` (s, FLOPs)."""
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
  step_s = whole_step[0]

  def line(name, seconds, flops):
    gflops = flops / 1e9
    rate = f"{gflops / seconds:.0f}" if np.isfinite(gflops) and seconds > 0 else "–"
    print(f"| {name} | {1e3 * seconds:.0f} | {100 * seconds / step_s:.1f} | {gflops:.2f} | "
          f"{rate} |")

  print(f"\nThe pieces, each compiled alone; median of {args.repeats} runs\n")
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




def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--frames", type=int, default=50)
  parser.add_argument("--repeats", type=int, default=3,
                      help="timed runs of the whole step and of each piece")
  parser.add_argument("--trace_steps", type=int, default=2, help="steps traced per op")
  parser.add_argument("--pieces", action=argparse.BooleanOptionalAction, default=True,
                      help="also time the pieces alone")
  parser.add_argument("--kernels", default="auto", choices=("auto", "cpu", "xla"))
  parser.add_argument("--compute_dtype", default="float32", choices=("float32", "bfloat16"))
  args = parser.parse_args()
  if min(args.repeats, args.trace_steps) < 1:
    parser.error("--repeats and --trace_steps must be at least 1")
  load_before = step_benchmark._load()  # pylint: disable=protected-access
  config = step_benchmark._config(  # pylint: disable=protected-access
      "full", args.batch, args.frames, {"kernels": args.kernels,
                                        "compute_dtype": args.compute_dtype})

  # The whole step: the time every piece is a share of, then its ops under the profiler.
  run, _, compile_step = step_benchmark.freqjax_step(config, "pmap")
  run()
  step_times = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    run()
    step_times.append(time.perf_counter() - start)
  compiled = compile_step()
  whole_step = (statistics.median(step_times),
                step_benchmark._cost(compiled).get("flops", float("nan")))  # pylint: disable=protected-access
  print(f"# whole step: {whole_step[0]:.2f} s", file=sys.stderr, flush=True)
  seconds, op_names, wall = per_op_profile(run, compiled.as_text(), args.trace_steps)

  print(f"\nThe full MICA step (FreST + FM + Harmonizer): batch {args.batch}, T={args.frames}, "
        f"{jax.default_backend()} ({jax.devices()[0].device_kind}), "
        f"{step_benchmark._cpu_description()}, {os.cpu_count()} cores, jax "  # pylint: disable=protected-access
        f"{jax.__version__}, model.kernels={args.kernels}, compute_dtype="
        f"{args.compute_dtype}; whole step {whole_step[0]:.2f} s (median of {args.repeats}), "
        f"{whole_step[1] / 1e9:.0f} GFLOP (XLA's count)")
  _print_per_op(seconds, op_names, wall, args.trace_steps)
  sys.stdout.flush()
  if args.pieces:
    profile_pieces(args, config, whole_step)
  print(f"\nload avg 1/5/15 min {load_before} → {step_benchmark._load()}")  # pylint: disable=protected-access


if __name__ == "__main__":
  main()
