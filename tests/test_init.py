"""`model.init`: the reference code's initialisation, and freqjax's earlier one unchanged.

The reference (SkeletonCLR/AimCLR's `weights_init`, applied to the whole model before
pretraining, linear evaluation and fine-tuning): every convolution and linear kernel
N(0, 0.02²), bias 0; every BatchNorm scale N(1, 0.02²), shift 0. Other parameters keep
their own initialisation (the edge-importance ones, LayerNorm, FreST's TSLANet init).
"""
import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs import eval as eval_configs
from configs import pretrain as pretrain_configs
from freqjax.evaluation import finetune
from freqjax.evaluation import run as evaluate
from freqjax.models import STGCN
from freqjax.pretraining import state as train_state
from helpers.array_dataset import ArrayDataset

STD = 0.02


def _flat(tree) -> dict[str, np.ndarray]:
  return {jax.tree_util.keystr(path): np.asarray(leaf, np.float64)
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _networks_state(scheme: str) -> train_state.TrainState:
  """A pretraining state, built from the config as pretraining does (about 2·10⁵ encoder
  kernel entries; parameter values do not depend on the sample shapes)."""
  config = pretrain_configs.get_config("test")
  config.model.init = scheme
  config.model.hidden_channels = 16
  config.model.hidden_dim = 64
  config.model.mlp_dim = 32
  config.harmonizer.dim = 64
  config.harmonizer.num_heads = 4
  nets = train_state.build_networks(config, bn_axis_name=None)
  x = jnp.zeros((1, 3, 4, 25, 1))
  words = jnp.zeros((1, 3, config.fm.dim))
  return jax.jit(functools.partial(train_state.create_train_state, config, nets,
                                   optax.sgd(0.1)))(x, words)


@pytest.fixture(scope="module")
def states():
  """`{scheme: TrainState}` for both schemes."""
  return {scheme: _networks_state(scheme) for scheme in ("reference", "flax")}


@pytest.fixture(scope="module")
def params(states):
  """`{scheme: {name: value}}` of both schemes' pretraining parameters."""
  return {scheme: _flat(state.params) for scheme, state in states.items()}


def _normal_cdf(x: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _check_normal(values: np.ndarray, mean: float, std: float, what: str) -> None:
  """`values` look like independent N(mean, std²) draws, at bounds a correct draw leaves
  with probability below ~1e-6: the sample mean within 5·std/√n of `mean`, the root mean
  square deviation from `mean` within 5/√(2n) of `std` (relative; its sampling error is
  std/√(2n)), and, from 1000 values on, the Kolmogorov-Smirnov distance to that normal
  below 2.5/√n (P ≈ 1e-5), which rejects a truncated normal or a uniform of the same
  standard deviation (their distances are 0.03 and 0.06 for large n)."""
  n = values.size
  deviations = values.ravel() - mean
  assert abs(deviations.mean()) < 5 * std / math.sqrt(n), (what, deviations.mean())
  rms = math.sqrt(np.mean(deviations ** 2))
  assert abs(rms / std - 1) < 5 / math.sqrt(2 * n), (what, rms)
  if n >= 1000:
    sorted_z = np.sort(deviations / std)
    cdf = _normal_cdf(sorted_z)
    distance = max(np.max(np.arange(1, n + 1) / n - cdf), np.max(cdf - np.arange(n) / n))
    assert distance < 2.5 / math.sqrt(n), (what, distance)


def test_reference_initialisation_of_every_network(params, states):
  """Encoder, MoCo head, projection and harmonizer, built from the config as pretraining does."""
  params = params["reference"]
  assert {name.split("'")[1] for name in params} == {"encoder", "mlp", "projection",
                                                       "harmonizer"}
  pooled = {"kernel": {}, "bn_scale": {}}
  checked = set()
  for name, value in params.items():
    if "frest" in name:
      continue  # TSLANet's initialisation, checked against the other scheme below
    network = name.split("'")[1]
    is_bn = "bn" in name
    if name.endswith("['kernel']"):
      _check_normal(value, 0.0, STD, name)
      pooled["kernel"].setdefault(network, []).append(value.ravel())
    elif name.endswith("['bias']"):
      np.testing.assert_array_equal(value, 0.0, err_msg=name)
    elif name.endswith("['scale']") and is_bn:
      _check_normal(value, 1.0, STD, name)
      pooled["bn_scale"].setdefault(network, []).append(value.ravel())
    elif name.endswith("['scale']"):  # the harmonizer's LayerNorm: not a reference layer
      np.testing.assert_array_equal(value, 1.0, err_msg=name)
    elif name.endswith("['edge_importance']"):
      np.testing.assert_array_equal(value, 1.0, err_msg=name)
    else:
      raise AssertionError(f"unexpected parameter {name}")
    checked.add(name)
  # Every convolution of the encoder (graph, temporal, residual) and every dense layer.
  kernels = [name for name in checked if name.endswith("['kernel']")]
  assert sum("['gcn']" in k for k in kernels) == 10
  assert sum("['tcn_conv']" in k for k in kernels) == 10
  assert sum("['residual_conv']" in k for k in kernels) == 2
  assert sum("['attention']" in k for k in kernels) == 4  # query, key, value, out
  assert any("data_bn" in name for name in checked)
  # Pooled over a network, the bounds are tight: ~1 % on the standard deviation.
  for network, values in pooled["kernel"].items():
    _check_normal(np.concatenate(values), 0.0, STD, f"{network} kernels")
  _check_normal(np.concatenate(pooled["bn_scale"]["encoder"]), 1.0, STD, "BatchNorm scales")
  assert sum(v.size for v in pooled["kernel"]["encoder"]) > 100_000
  # BatchNorm running statistics start at mean 0, variance 1 (not parameters).
  for name, value in _flat(states["reference"].batch_stats).items():
    np.testing.assert_array_equal(value, 1.0 if name.endswith("['var']") else 0.0,
                                  err_msg=name)


def test_frest_keeps_its_initialisation_in_both_schemes(params):
  frest = {k: v for k, v in params["reference"].items() if "frest" in k}
  assert len(frest) == 10
  for name, value in frest.items():
    np.testing.assert_array_equal(value, params["flax"][name], err_msg=name)


# Recorded from freqjax before `model.init` existed (commit f3769a5) with `_networks_state`:
# the first two entries and the sum of squares of a few leaves.
FLAX_RECORD = {
    "['encoder']['block0']['gcn']['kernel']": ([-0.20794433, -0.27185884], 54.60670781),
    "['encoder']['block4']['residual_conv']['kernel']": ([-0.14608152, 0.39473128],
                                                         30.57623561),
    "['encoder']['block9']['tcn_conv']['kernel']": ([-0.03861354, -0.00123816], 63.33217202),
    "['encoder']['frest9']['fres']['w_global']": ([0.00652182, 0.0336658], 0.05241668),
    "['encoder']['frest9']['fret']['threshold']": ([0.75615311], 0.57176752),
    "['harmonizer']['attention']['query']['kernel']": ([0.02688105, -0.24743058], 62.40303531),
    "['harmonizer']['frame_proj']['kernel']": ([0.1467617, -0.22234149], 65.32010026),
    "['harmonizer']['out_proj']['kernel']": ([-0.04638964, 0.03754036], 510.33177988),
    "['mlp']['layers_0']['bias']": ([0.01847449, 0.09611332], 0.34876865),
    "['mlp']['layers_0']['kernel']": ([-0.11545137, 0.05886984], 21.23430023),
    "['projection']['fc']['bias']": ([-0.04570675, 0.04846618], 2.62717089),
    "['projection']['fc']['kernel']": ([0.05267984, -0.0896076], 170.34199197),
}


def test_flax_scheme_is_the_earlier_initialisation(params):
  leaves = params["flax"]
  for name, (first, sum_of_squares) in FLAX_RECORD.items():
    np.testing.assert_allclose(leaves[name].ravel()[:2], first, rtol=1e-5, atol=1e-8,
                               err_msg=name)
    np.testing.assert_allclose(np.sum(leaves[name] ** 2), sum_of_squares, rtol=1e-5,
                               err_msg=name)
  # BatchNorm scales 1, the encoder's and harmonizer's biases 0, as before.
  for name, value in leaves.items():
    if "bn" in name and name.endswith("['scale']"):
      np.testing.assert_array_equal(value, 1.0, err_msg=name)
    if name.startswith(("['encoder']", "['harmonizer']")) and name.endswith("['bias']"):
      np.testing.assert_array_equal(value, 0.0, err_msg=name)


def test_the_config_field_reaches_every_network():
  config = pretrain_configs.get_config("test")
  for scheme in ("reference", "flax"):
    config.model.init = scheme
    nets = train_state.build_networks(config, bn_axis_name=None)
    assert {nets.encoder.init_scheme, nets.mlp.init_scheme, nets.projection.init_scheme,
            nets.harmonizer.init_scheme} == {scheme}
  config.model.init = "torch"
  with pytest.raises(ValueError, match="model.init is 'torch'; use one of reference, flax"):
    train_state.build_networks(config, bn_axis_name=None)


def _eval_setup(tmp_path, pretrain_model: dict | None, **model_fields):
  workdir = tmp_path / "run"
  workdir.mkdir(parents=True, exist_ok=True)
  if pretrain_model is not None:
    (workdir / "config.json").write_text(json.dumps({"model": pretrain_model}))
  config = eval_configs.get_config("linear")
  config.init_from = "random"
  config.data.path = str(tmp_path / "data")
  for name, value in model_fields.items():
    config.model[name] = value
  return evaluate.resolve(config, str(workdir))


def test_evaluation_inherits_the_pretraining_scheme(tmp_path):
  assert _eval_setup(tmp_path, {"init": "flax"}).encoder.init_scheme == "flax"
  assert _eval_setup(tmp_path, {"init": "flax"}, init="reference").encoder.init_scheme == (
      "reference")
  assert _eval_setup(tmp_path / "a", {}).encoder.init_scheme == "reference"
  with pytest.raises(evaluate.EvaluationError, match="model.init is 'torch'"):
    _eval_setup(tmp_path / "b", None, init="torch")


@pytest.mark.parametrize("scheme,std", [("reference", 0.02), ("flax", 0.01)])
def test_finetuning_head_follows_the_encoder_scheme(scheme, std):
  """The head `finetune.train` creates (0 epochs: the state as created)."""
  encoder = STGCN(hidden_dim=64, init_scheme=scheme)
  x = np.zeros((4, 3, 8, 25, 2), np.float32)
  variables = {"params": {}, "batch_stats": {}}  # never run: the head is what is checked
  config = eval_configs.get_config("finetune").finetune
  config.epochs = 0
  config.batch_size = 4
  result = finetune.train(encoder, variables, ArrayDataset(x, np.arange(4) % 2), 60, config,
                          stream="joint", seed=0, progress=False)
  _check_normal(np.asarray(result.head_params["fc"]["kernel"], np.float64), 0.0, std,
                "fine-tuning head")
  np.testing.assert_array_equal(result.head_params["fc"]["bias"], 0.0)
