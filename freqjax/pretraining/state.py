"""The pretraining networks and the explicit train state (one pytree)."""
import dataclasses

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from freqjax.models import STGCN
from freqjax.models.harmonizer import ModalityHarmonizer
from freqjax.models.heads import MLPHead, Projection
from freqjax.models.precision import compute_dtype
from freqjax.normalize import l2_normalize


@dataclasses.dataclass(frozen=True)
class Networks:
  """The modules of MICA pretraining; `projection`/`harmonizer` are None when their loss
  weight is 0 (they are then absent from the params and the compiled step)."""
  encoder: STGCN
  mlp: MLPHead
  projection: Projection | None
  harmonizer: ModalityHarmonizer | None


def build_networks(config: ml_collections.ConfigDict, bn_axis_name: str | None,
                   platform: str | None = None) -> Networks:
  """The networks `config` describes; `platform` is what they will be compiled for (it
  resolves `model.kernels = "auto"`; None: `jax.default_backend()`)."""
  m = config.model
  encoder = STGCN.from_config(m, bn_axis_name=bn_axis_name, platform=platform)
  scheme = encoder.init_scheme  # model.init, checked by from_config
  dtype = compute_dtype(encoder.compute_dtype)
  return Networks(
      encoder=encoder,
      mlp=MLPHead(hidden=m.hidden_dim, features=m.mlp_dim, init_scheme=scheme, dtype=dtype),
      projection=Projection(config.fm.dim, init_scheme=scheme, dtype=dtype)
      if config.fm.weight > 0 else None,
      harmonizer=ModalityHarmonizer(config.harmonizer.dim, config.harmonizer.num_heads,
                                    config.fm.dim, config.harmonizer.dropout, init_scheme=scheme,
                                    dtype=dtype)
      if config.harmonizer.weight > 0 else None)


@flax.struct.dataclass
class TrainState:
  """Everything a run needs to continue bit for bit (saved whole by Orbax).

  Attributes:
    step: int32 scalar, optimizer steps done.
    params: query side: `encoder`, `mlp` and, when enabled, `projection`, `harmonizer`.
    batch_stats: the query encoder's BatchNorm statistics.
    key_params: the key encoder `{encoder, mlp}`, an EMA of the query's (never trained).
    key_batch_stats: the key encoder's own BatchNorm statistics.
    queue: `(K, mlp_dim)` L2-normalised keys of earlier batches; `queue_ptr` next row.
    text_queue: `(K_t, fm_dim)` text embeddings of earlier batches; `text_queue_ptr`.
    opt_state: optax state.
    rng: uint32 `(2,)` base key; step s uses `fold_in(rng, s)`.
  """
  step: jax.Array
  params: dict
  batch_stats: dict
  key_params: dict
  key_batch_stats: dict
  queue: jax.Array
  queue_ptr: jax.Array
  text_queue: jax.Array
  text_queue_ptr: jax.Array
  opt_state: optax.OptState
  rng: jax.Array


def _copy(tree):
  # Fresh buffers: an EMA initialised as `params` would alias them, and donating the
  # state then fails ("donate the same buffer twice").
  return jax.tree_util.tree_map(jnp.copy, tree)


def create_train_state(config: ml_collections.ConfigDict, nets: Networks,
                       tx: optax.GradientTransformation, sample_x: jax.Array,
                       sample_words: jax.Array | None = None) -> TrainState:
  """Initialises a state from `config.seed`.

  Args:
    sample_x: `(n, 3, T, V, M)` a batch of the training input (shapes only matter).
    sample_words: `(n, L, H)` word features, needed when the harmonizer is on.
  """
  rng = jax.random.PRNGKey(config.seed)
  init_rng, queue_rng, text_rng, rng = jax.random.split(rng, 4)
  keys = jax.random.split(init_rng, 4)
  variables = nets.encoder.init(keys[0], sample_x, train=False)
  h, frames = nets.encoder.apply(variables, sample_x, train=False)
  params = {"encoder": variables["params"], "mlp": nets.mlp.init(keys[1], h)["params"]}
  if nets.projection is not None:
    params["projection"] = nets.projection.init(keys[2], h)["params"]
  if nets.harmonizer is not None:
    if sample_words is None:
      raise ValueError("The Modality Harmonizer needs word features: set text.path.")
    mask = jnp.ones(sample_words.shape[:2], bool)
    params["harmonizer"] = nets.harmonizer.init(keys[3], frames, sample_words, mask)["params"]
  queue = l2_normalize(jax.random.normal(queue_rng, (config.moco.queue_size, config.model.mlp_dim)))
  text_queue = l2_normalize(jax.random.normal(text_rng, (config.fm.text_queue_size, config.fm.dim)))
  # The key encoder starts as an exact copy of the query encoder and MLP, MoCo's intent.
  # SkeletonCLR/AimCLR copy too but then re-initialise the whole model, so their key
  # encoder starts from independent weights (docs/method.md, "Departures from the
  # reference code"); freqjax keeps the copy.
  return TrainState(
      step=jnp.int32(0), params=params, batch_stats=variables["batch_stats"],
      key_params=_copy({"encoder": params["encoder"], "mlp": params["mlp"]}),
      key_batch_stats=_copy(variables["batch_stats"]),
      queue=queue, queue_ptr=jnp.int32(0), text_queue=text_queue, text_queue_ptr=jnp.int32(0),
      opt_state=tx.init(params), rng=rng)
