"""The pretraining step, the encoder's inference function and the fine-tuning step lower
and export for GPUs and TPUs on this CPU-only machine.

`jax.export.export(jax.jit(fn), platforms=("cuda", "tpu"))` traces and lowers `fn` to
StableHLO for both platforms without their devices: a primitive with no lowering rule
there (a CPU-only op) or a custom call without a compatibility guarantee fails here, on
this machine (`test_a_cpu_only_op_fails_to_export`). Nothing is compiled (XLA's GPU and
TPU compilers are not installed here): the exported module is what they would compile.
Each network is built for the platform (`model.kernels = "auto"` resolves to the XLA set).

Both data-parallel backends: in jax 0.10 `jax.pmap` is itself `jax.jit` of a `shard_map`,
so `jax.jit(DataParallel("pmap").compile(step))` exports, over this host's one CPU device
(the device count is an input of `pmap`); the `shard_map` backend is exported over an
abstract 8-device mesh (`jax.sharding.AbstractMesh`, no devices needed), the same
`shard_map` `DataParallel.compile` builds over a concrete mesh, so its collectives are
lowered for 8 devices.
"""
import functools

import jax
import jax.numpy as jnp
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from configs import eval as eval_configs
from configs import pretrain
from freqjax import optim, parallel
from freqjax.evaluation import features, finetune
from freqjax.models import STGCN
from freqjax.models.heads import LinearClassifier
from freqjax.pretraining import state as train_state
from freqjax.pretraining import step as train_step

PLATFORMS = ("cuda", "tpu")
NUM_DEVICES = 8  # of the abstract mesh


def _export(fn, *specs) -> jax.export.Exported:
  exported = jax.export.export(fn, platforms=PLATFORMS)(*specs)
  assert exported.platforms == PLATFORMS
  assert exported.mlir_module_serialized  # the StableHLO bytecode a GPU/TPU host compiles
  return exported


def _spec(tree, leading=()):
  """ShapeDtypeStructs of `tree`'s leaves, with `leading` axes prepended."""
  return jax.tree.map(lambda a: jax.ShapeDtypeStruct(leading + tuple(a.shape), a.dtype), tree)


def _shard_map_over_abstract_mesh(per_device_fn):
  """`DataParallel("shard_map").compile`'s program, over `NUM_DEVICES` abstract devices."""
  mesh = jax.sharding.AbstractMesh((NUM_DEVICES,), (parallel.AXIS,))
  sharded = jax.shard_map(per_device_fn, mesh=mesh, in_specs=(P(), P(parallel.AXIS)),
                          out_specs=(P(), P()), check_vma=False)
  replicated, split = NamedSharding(mesh, P()), NamedSharding(mesh, P(parallel.AXIS))
  return jax.jit(sharded, in_shardings=(replicated, split), out_shardings=replicated)


def _pretraining(kernels="auto"):
  """The test config's pretraining step for PLATFORMS, and specs of its state and batch."""
  config = pretrain.get_config("test")
  config.model.kernels = kernels
  config.optim.batch_size = NUM_DEVICES
  nets = train_state.build_networks(config, parallel.AXIS, platform=PLATFORMS[0])
  tx = optim.sgd(config, steps_per_epoch=10)
  b, words = config.optim.batch_size, 4
  batch = {"x": jax.ShapeDtypeStruct((b, 3, config.data.num_frames, 25, 2), jnp.float32),
           "text_embedding": jax.ShapeDtypeStruct((b, config.fm.dim), jnp.float32),
           "word_features": jax.ShapeDtypeStruct((b, words, 32), jnp.float32),
           "word_mask": jax.ShapeDtypeStruct((b, words), jnp.bool_)}
  state = jax.eval_shape(
      functools.partial(train_state.create_train_state, config,
                        train_state.build_networks(config, None, platform=PLATFORMS[0]), tx),
      batch["x"], batch["word_features"])
  step = functools.partial(train_step.train_step, nets=nets, tx=tx,
                           schedule=optim.learning_rate(config, 10), config=config)
  return nets, step, state, batch


def test_auto_resolves_to_the_xla_kernels_for_accelerators():
  nets, *_ = _pretraining()
  assert nets.encoder.kernels == "xla"


@pytest.mark.parametrize("backend", ["pmap", "shard_map"])
def test_pretraining_step_exports(backend):
  _, step, state, batch = _pretraining()
  if backend == "pmap":
    fn = jax.jit(parallel.DataParallel("pmap", devices=tuple(jax.devices()[:1])).compile(
        step, donate_state=False))
    # pmap's layout: a leading axis of one slice per (here: one) device.
    exported = _export(fn, _spec(state, (1,)), _spec(batch, (1,)))
    assert exported.nr_devices == 1
  else:
    exported = _export(_shard_map_over_abstract_mesh(step), state, batch)
    assert exported.nr_devices == NUM_DEVICES
  module = exported.mlir_module()
  # The gradient and metric means, the keys' all_gather: the collectives are in the program.
  assert "all_reduce" in module and "all_gather" in module


def test_encoder_inference_exports():
  """The jitted forward `freqjax.evaluation.features` extracts features with."""
  config = pretrain.get_config("test")
  encoder = STGCN.from_config(config.model, platform=PLATFORMS[0])
  x = jax.ShapeDtypeStruct((16, 3, config.data.num_frames, 25, 2), jnp.float32)
  variables = jax.eval_shape(functools.partial(encoder.init, train=False),
                             jax.random.key(0), x)
  forward = features._feature_fn(encoder, "bone")  # pylint: disable=protected-access
  exported = _export(forward, variables, x)
  assert exported.out_avals[0].shape == (16, config.model.hidden_dim)


@pytest.mark.parametrize("backend", ["pmap", "shard_map"])
def test_finetuning_step_exports(backend):
  pretraining = pretrain.get_config("test")
  config = eval_configs.get_config("finetune").finetune
  config.encoder_mode = "train"  # batch statistics synced over the devices, dropout
  encoder = STGCN.from_config(pretraining.model, bn_axis_name=parallel.AXIS,
                              platform=PLATFORMS[0])
  assert encoder.kernels == "xla"
  head = LinearClassifier(5)
  tx = optim.pytorch_sgd(config.momentum, config.nesterov, config.weight_decay)
  x = jax.ShapeDtypeStruct((NUM_DEVICES, 3, pretraining.data.num_frames, 25, 2), jnp.float32)
  variables = jax.eval_shape(functools.partial(encoder.init, train=False),
                             jax.random.key(0), x)
  state = jax.eval_shape(functools.partial(
      finetune.create_state, head=head, feature_dim=encoder.hidden_dim, tx=tx, seed=0),
      variables)
  batch = {"x": x, "label": jax.ShapeDtypeStruct((NUM_DEVICES,), jnp.int32)}
  step = functools.partial(
      finetune.finetune_step, encoder=encoder, head=head, tx=tx,
      epoch_lrs=finetune.learning_rates(config), steps_per_epoch=10, stream="motion",
      augmentation=config.augment, encoder_mode=config.encoder_mode)
  if backend == "pmap":
    fn = jax.jit(parallel.DataParallel("pmap", devices=tuple(jax.devices()[:1])).compile(
        step, donate_state=False))
    exported = _export(fn, _spec(state, (1,)), _spec(batch, (1,)))
  else:
    exported = _export(_shard_map_over_abstract_mesh(step), state, batch)
    assert exported.nr_devices == NUM_DEVICES
  assert "all_reduce" in exported.mlir_module()


def test_the_cpu_kernels_export_too():
  """The CPU set is made of ordinary XLA ops (custom VJPs, matrix products, convolutions,
  random bits), none CPU-only: it exports for GPUs and TPUs as well (it is merely tuned
  for XLA:CPU), so `kernels="cpu"` is a speed choice, not a portability one."""
  _, step, state, batch = _pretraining(kernels="cpu")
  _export(_shard_map_over_abstract_mesh(step), state, batch)


def test_a_cpu_only_op_fails_to_export():
  """The check has teeth: `eig` (a general eigendecomposition, a LAPACK call on CPU)
  exports for the CPU but has no TPU lowering and no stable GPU custom call."""
  fn = jax.jit(lambda a: jnp.linalg.eig(a)[0].real)
  spec = jax.ShapeDtypeStruct((3, 3), jnp.float32)
  jax.export.export(fn, platforms=("cpu",))(spec)
  with pytest.raises((NotImplementedError, ValueError)):
    _export(fn, spec)
