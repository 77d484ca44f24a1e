"""The benchmarks: `train_step.py`'s freqjax and PyTorch steps run side by side and its
ratios are right; `profile_step.py` reads XLA's thunk times from a trace and groups them by
module and pass."""
import importlib.util
import os

import pytest

from configs import pretrain
from helpers import import_torch

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "benchmarks")


def _load(name: str):
  """`benchmarks/<name>.py` as a module (benchmarks/ is not a package)."""
  spec = importlib.util.spec_from_file_location(f"benchmark_{name}",
                                                os.path.join(BENCHMARKS, f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_side_by_side_runs_pytorch_and_freqjax_steps_in_turns():
  import_torch()
  bench = _load("train_step")
  # Two threads on a loaded 2-core machine make tiny PyTorch steps 10-100x slower.
  result = bench.compare(["full"], batch=4, frames=8, steps=1, rounds=2,
                         backend="pmap", model={}, torch_threads=(1,),
                         base=pretrain.get_config("test"))
  assert set(result["step_s"]) == {"pytorch@1", "full"}
  for name, rounds in result["step_s"].items():
    assert [len(times) for times in rounds] == [1, 1], name
    assert all(t > 0 for times in rounds for t in times), name
  rows = bench.side_by_side_rows(result, batch=4)
  assert [r["name"] for r in rows] == ["pytorch@1", "full"]
  assert "ratio" not in rows[0] and all(r["ratio"] > 0 for r in rows[1:])
  assert {r["reference"] for r in rows} == {"pytorch@1"}


def test_pytorch_step_is_the_configs_skeletonclr():
  """The benchmark's PyTorch model has the config's widths, dropout and queue, and its
  optimizer trains the query encoder only."""
  torch = import_torch()
  bench = _load("train_step")
  config = bench._config("plain", 4, 8, {}, base=pretrain.get_config("test"))  # pylint: disable=protected-access
  run = bench.pytorch_step(config, threads=1)
  model, optimizer = run.args[:2]
  assert model.queue.shape == (config.model.mlp_dim, config.moco.queue_size)
  assert model.encoder_q.fc[2].out_features == config.model.mlp_dim
  assert model.encoder_q.stgcn.st_gcn_networks[-1].tcn[2].out_channels == config.model.hidden_dim
  rates = [m.p for m in model.encoder_q.modules() if isinstance(m, torch.nn.Dropout)]
  assert rates == [0.0] + [config.model.dropout] * 9  # none in block 0, as the reference
  trained = {id(p) for group in optimizer.param_groups for p in group["params"]}
  assert trained == {id(p) for p in model.encoder_q.parameters()}
  assert optimizer.defaults["lr"] == pytest.approx(config.optim.base_lr * 4 / 128)
  key_before = [p.detach().clone() for p in model.encoder_k.parameters()]
  query_before = [p.detach().clone() for p in model.encoder_q.stgcn.parameters()]
  run()
  assert int(model.queue_ptr) == 4
  # The key encoder moves only by the EMA: m·θ_k + (1 − m)·θ_q with θ_k = θ_q at the start.
  for before, after in zip(key_before, model.encoder_k.parameters()):
    torch.testing.assert_close(after, before)
  moved = [not torch.equal(a, b) for a, b in zip(query_before, model.encoder_q.stgcn.parameters())]
  assert sum(moved) > len(moved) // 2


def test_side_by_side_ratios():
  """Medians over every step, per-round ratios of the rounds' medians, against the
  fastest PyTorch row (hand-computed)."""
  bench = _load("train_step")
  result = {"step_s": {"pytorch@2": [[5.0], [6.0]], "pytorch@1": [[2.0, 4.0], [4.0]],
                       "full": [[1.0], [2.0, 2.0]]},
            "first_s": {"pytorch@2": 9.0, "pytorch@1": 9.0, "full": 30.0}}
  slow, pytorch, full = bench.side_by_side_rows(result, batch=8)
  assert slow["reference"] == full["reference"] == "pytorch@1"
  assert pytorch["samples_per_s"] == pytest.approx(2.0)  # 8 / median(2, 4, 4)
  assert full["samples_per_s"] == pytest.approx(4.0)  # 8 / median(1, 2, 2)
  assert full["ratio"] == pytest.approx(2.0)
  # Round 0: (8 / 1) / (8 / 3) = 3; round 1: (8 / 2) / (8 / 4) = 2.
  assert (full["ratio_min"], full["ratio_max"]) == pytest.approx((2.0, 3.0))
  assert (full["min_s"], full["max_s"], full["first_s"]) == (1.0, 2.0, 30.0)


def _profile_module():
  import sys  # pylint: disable=import-outside-toplevel
  if BENCHMARKS not in sys.path:
    sys.path.insert(0, BENCHMARKS)  # profile_step imports train_step beside it
  return _load("profile_step")


@pytest.mark.parametrize("op_name, group, pass_", [
    ("jit(_fun)/jvp(STGCN)/block9/tcn_conv/conv_general_dilated",
     ("block 9", "temporal conv 9×1"), "query forward"),
    ("jit(_fun)/transpose(jvp(STGCN))/block4/gcn/av,nvi->nai/dot_general",
     ("block 4", "graph conv"), "backward"),
    ("jit(_fun)/STGCN/block7/residual_bn/sub", ("block 7", "BatchNorms"), "key forward / no gradient"),
    ("jit(_fun)/STGCN/block3/jit(_threefry_fold_in)/train_step/while/body/add",
     ("block 3", "dropout"), "key forward / no gradient"),
    ("jit(_fun)/jvp(STGCN)/block12/add", ("block 12", "ReLU, residual sum, edge importance"),
     "query forward"),
    ("jit(_fun)/jvp(STGCN)/block2/ge", ("block 2", "dropout"), "query forward"),
    ("jit(_fun)/STGCN/block5/iota_2x32_shape", ("block 5", "dropout"),
     "key forward / no gradient"),
    ("jit(_fun)/transpose(jvp(STGCN))/frest9/fres/sub",
     ("FreST after block 9", "FreS (joints)"), "backward"),
    ("jit(_fun)/STGCN/frest9/frest9._decouple/temporal_norm/reduce_sum",
     ("FreST after block 9", "FreT (frames)"), "key forward / no gradient"),
    ("jit(_fun)/jvp(ModalityHarmonizer)/attention/value/add",
     ("Modality Harmonizer", "Modality Harmonizer"), "query forward"),
    ("jit(_fun)/mul;jit(_fun)/add", ("outside the modules: losses, optimizer, EMA, queues, views",) * 2,
     "key forward / no gradient"),
])
def test_profile_groups_ops_by_module_and_pass(op_name, group, pass_):
  profile = _profile_module()
  assert profile.group_of(op_name, "fusion.3") == group
  assert profile.pass_of(op_name) == pass_


def test_profile_groups_nameless_instructions_by_their_own_name():
  profile = _profile_module()
  assert profile.group_of("", "convolution.23") == ("made by XLA", "convolution (no source op)")
  assert profile.pass_of("") == "unknown"
  assert profile.group_of("flat_args[351]", "copy.3") == (
      "copies of the step's arguments (state, queues, batch)",) * 2


def test_thunk_time_is_shared_among_the_thunks_in_flight():
  """Two thunks overlapping for 2 of their 4 and 3 seconds: each gets 1 of the shared 2."""
  profile = _profile_module()
  intervals = [("a", 0.0, 4.0), ("b", 2.0, 5.0)]
  seconds = profile.shared_seconds(intervals)
  assert seconds["a"] == pytest.approx(2 + 1) and seconds["b"] == pytest.approx(1 + 1)
  assert sum(seconds.values()) == pytest.approx(5.0)  # the time any thunk was in flight


def test_per_op_profile_reads_the_thunks_of_the_step():
  """The trace names each XLA:CPU thunk; the convolution, which runs asynchronously on
  the thread pool after its thunk event, is timed to its completion: it is the largest
  and carries its source op's name."""
  import jax  # pylint: disable=import-outside-toplevel
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  profile = _profile_module()
  x, w = jnp.ones((16, 64, 64, 32)), jnp.ones((3, 3, 32, 32))

  def convolution_then_tanh(x, w):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return jnp.tanh(y)

  step = jax.jit(convolution_then_tanh)
  hlo = step.lower(x, w).compile().as_text()
  seconds, op_names, wall = profile.per_op_profile(
      lambda: jax.block_until_ready(step(x, w)), hlo, steps=2)
  assert len(wall) == 2
  largest, largest_s = seconds.most_common(1)[0]
  assert "conv_general_dilated" in op_names.get(largest, ""), (largest, op_names.get(largest))
  assert largest_s > 0.5 * sum(seconds.values())
