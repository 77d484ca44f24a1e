"""Evaluation of a pretrained encoder: the protocols of docs/method.md, "Evaluation
protocols", wired to checkpoints and data.

`evaluate(config, workdir)` is what `python eval.py` calls (configs in `configs/eval.py`).
It restores the encoder (the workdir's latest checkpoint, another workdir, a PyTorch
ST-GCN checkpoint, or a random initialisation as a baseline), opens the data the encoder
was pretrained on (or another dataset: `transfer`), runs one protocol and writes the
report `workdir/eval/<name>/` (`freqjax.evaluation.report`). It returns an `Evaluation`:
the headline accuracies, the report's folder, and the protocol's typed record
(`freqjax.evaluation.records`), which is also what `results.json["extra"]` holds.

Protocols, and the choices each one records:
- `linear` / `transfer`: the encoder frozen in inference mode (BatchNorm running
  statistics, no dropout); features of every train and test sample extracted once by a
  jitted forward, then `train_linear_probe`. Two probes run: the **reported** one trains
  on the whole training split (the published recipe) and its last-epoch test accuracy is
  the headline; a second one trains on train minus a stratified minival part and picks
  an epoch on minival, reported labelled as such (how far the chosen epoch is from the
  last one, without looking at test). The best test accuracy over epochs of the first
  probe is recorded too, labelled as selected on test.
- `knn`: weighted cosine kNN of the test features among the training features.
- `semi` / `finetune`: a class-balanced label subset (or the whole training split),
  encoder + new linear head trained together with the normal-view augmentation, the
  encoder in `finetune.encoder_mode` (`eval`, the reference's: running BatchNorm
  statistics, no dropout; or `train`), data-parallel over the host's devices
  (`freqjax.evaluation.finetune`; dropout masks per device); the last epoch's test
  accuracy is reported (no selection), with the mode used. Test logits come from the
  fine-tuned encoder in inference mode.

The encoder always sees the stream it was pretrained on (`data.stream`, computed on
device from the joints). Every test sample is counted exactly once: the last batch is
padded and masked, and a count of the rows seen is checked.
"""
import dataclasses
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import tqdm

from freqjax import cli
from freqjax.checkpoints import store as checkpoint
from freqjax.data import pipeline, readers, streams
from freqjax.evaluation import knn as knn_lib
from freqjax.evaluation import finetune, linear_probe, records, report, subsets
from freqjax.evaluation.features import extract_features
from freqjax.models import STGCN
from freqjax.models.heads import LinearClassifier
from freqjax.text import classes

PROTOCOLS = ("linear", "knn", "semi", "finetune", "transfer")
DATA_FIELDS = ("format", "path", "split", "test_split", "num_frames", "num_classes", "stream")
# Used when there is no pretraining config (an imported PyTorch checkpoint): the field's
# 50-frame AimCLR files, and SkeletonCLR's ST-GCN without FreST.
DATA_DEFAULTS = {"format": "aimclr", "split": "train", "test_split": "val", "num_frames": 50,
                 "stream": "joint"}
PRETRAIN_CONFIG = checkpoint.RUN_CONFIG
RANDOM_INIT = "random"


@dataclasses.dataclass(frozen=True)
class ProtocolOutput:
  """What every protocol hands to the report.

  Attributes:
    test_logits: `(N_test, C)` scores whose argmax is the prediction.
    test_labels: `(N_test,)` labels, row i for test sample i.
    record: the protocol's settings and secondary numbers, each labelled with how it was
      chosen (`records.LinearProbeRecord`, `KnnRecord` or `FinetuneRecord`).
    test_features: `(N_test, D)` the frozen encoder's features of the test samples (None
      for fine-tuning), mapped in 2-D in the report's `embedding.png`.
  """
  test_logits: np.ndarray
  test_labels: np.ndarray
  record: records.ProtocolRecord
  test_features: np.ndarray | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Evaluation:
  """What `evaluate` returns (accuracies in percent, as in `results.json`).

  Attributes:
    protocol: the protocol run: `linear`, `knn`, `semi`, `finetune` or `transfer`.
    name: the report's folder name under `workdir/eval/`.
    test_top1: test top-1 of the reported model.
    test_top5: test top-5 of the reported model.
    num_test: test samples, each counted once.
    checkpoint_step: the pretraining step of the encoder (None: a PyTorch checkpoint or a
      random initialisation).
    report_dir: the report's folder.
    summary: the lines the CLI prints.
    record: the protocol's record (`records.LinearProbeRecord`, `KnnRecord` or
      `FinetuneRecord`).
    run_record: where the encoder and the data came from, and the wall time
      (`records.RunRecord`). `results.json["extra"]` is
      `records.extra_json(record, run_record)`.
  """
  protocol: str
  name: str
  test_top1: float
  test_top5: float
  num_test: int
  checkpoint_step: int | None
  report_dir: str
  summary: str
  record: records.ProtocolRecord
  run_record: records.RunRecord


class EvaluationError(cli.UserError, ValueError):
  """A configuration or input that cannot be evaluated; the message says how to fix it."""


@dataclasses.dataclass(frozen=True)
class Setup:
  """What an evaluation runs on, resolved from the eval and pretraining configs.

  Attributes:
    config: the eval config with every inherited `data.*`/`model.*` field filled in.
    pretrain_config: the pretraining config (a dict from `config.json`), or None.
    pretrain_config_path: where it was read from, or None.
    source: where the encoder weights come from (a workdir, a checkpoint file, "random").
    encoder: the ST-GCN of the pretraining config (BatchNorm not synchronised).
    name: the report's folder name under `workdir/eval/`.
  """
  config: ml_collections.ConfigDict
  pretrain_config: dict | None
  pretrain_config_path: str | None
  source: str
  encoder: STGCN
  name: str


def report_name(config: ml_collections.ConfigDict) -> str:
  """`config.name`, or the protocol's default folder (`semi_1pct` for 1 % of the labels)."""
  if config.name:
    return config.name
  if config.protocol == "semi":
    return f"semi_{100 * config.finetune.label_fraction:g}pct"
  return config.protocol


def _read_pretrain_config(source: str, workdir: str) -> tuple[dict | None, str | None]:
  """The pretraining config of the encoder's source (None for a checkpoint file)."""
  if source == RANDOM_INIT:
    directory = workdir
  elif os.path.isdir(source):
    directory = source
  else:
    return None, None
  if source == RANDOM_INIT and not os.path.exists(os.path.join(directory, PRETRAIN_CONFIG)):
    return None, None
  try:
    return checkpoint.read_run_config(directory)
  except checkpoint.RunConfigError as e:
    raise EvaluationError(str(e)) from None


def resolve(config: ml_collections.ConfigDict, workdir: str) -> Setup:
  """Fills the eval config's inherited fields and builds the encoder (see `Setup`)."""
  if config.protocol not in PROTOCOLS:
    raise EvaluationError(f"protocol {config.protocol!r}: use one of {', '.join(PROTOCOLS)}.")
  source = config.init_from or workdir
  if source != RANDOM_INIT and not os.path.exists(source):
    what = "init_from" if config.init_from else "--workdir"
    raise FileNotFoundError(f"{source} ({what}): no such workdir or checkpoint file.")
  checkpoints = os.path.join(source, checkpoint.CHECKPOINT_DIR)
  if os.path.isdir(source) and not os.path.isdir(checkpoints):
    raise FileNotFoundError(
        f"{source}: no checkpoint (no {checkpoint.CHECKPOINT_DIR}/ folder). Pretrain first "
        f"(python train.py --workdir {source}), or set --config.init_from to a workdir or "
        "a PyTorch checkpoint (.pt/.npz).")
  pretrain, pretrain_path = _read_pretrain_config(source, workdir)
  resolved = config.copy_and_resolve_references()

  inherited = dict((pretrain or {}).get("data", {}))
  if config.protocol == "transfer":
    if not config.data.path:
      raise EvaluationError(
          "the transfer protocol evaluates on another dataset: set --config.data.path "
          "(and data.format/split/test_split if they differ from the pretraining data).")
    inherited.pop("num_classes", None)  # the target dataset's own classes
  for field in DATA_FIELDS:
    if resolved.data[field] is None:
      value = inherited.get(field, DATA_DEFAULTS.get(field))
      if value is not None:
        resolved.data[field] = value
  if not resolved.data.path:
    raise EvaluationError(
        f"data.path is not set and {source} has no pretraining config to inherit it "
        "from: pass --config.data.path (and data.format, data.num_classes if needed).")
  if resolved.data.stream not in streams.STREAMS:
    raise EvaluationError(f"data.stream {resolved.data.stream!r}: use one of "
                          f"{', '.join(streams.STREAMS)}.")

  pretrain_model = (pretrain or {}).get("model", {})
  # Fields without a pretraining config (a PyTorch checkpoint): the class defaults.
  defaults = {f.name: f.default for f in dataclasses.fields(STGCN)}
  defaults["frest_blocks"] = ()  # a PyTorch ST-GCN has no FreST
  # model.init is the attribute init_scheme (a flax Module's `init` is its method). A
  # pretraining config.json from before the field inherits the default too: set
  # --config.model.init=flax to repeat an evaluation made before it.
  defaults["init"] = STGCN.init_scheme
  for field in resolved.model:  # every model field of the pretraining config
    if resolved.model[field] is None:
      value = pretrain_model.get(field, defaults.get(field))
      resolved.model[field] = tuple(value) if field == "frest_blocks" else value
  try:
    encoder = STGCN.from_config(resolved.model)
  except ValueError as e:
    raise EvaluationError(str(e)) from None
  return Setup(resolved, pretrain, pretrain_path, source, encoder, report_name(config))


def _flat_shapes(tree) -> dict[str, tuple[int, ...]]:
  return {jax.tree_util.keystr(path): tuple(np.shape(leaf))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _check_structure(expected, loaded, where: str, hint: str = "") -> None:
  """Raises EvaluationError unless `loaded` has exactly `expected`'s leaves and shapes."""
  want, got = _flat_shapes(expected), _flat_shapes(loaded)
  missing = sorted(set(want) - set(got))
  unexpected = sorted(set(got) - set(want))
  mismatched = [f"{k}: checkpoint {got[k]} vs model {want[k]}"
                for k in sorted(set(want) & set(got)) if want[k] != got[k]]
  if not (missing or unexpected or mismatched):
    return
  problems = []
  for label, items in (("missing", missing), ("unexpected", unexpected),
                       ("shape mismatch", mismatched)):
    if items:
      more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
      problems.append(f"{label}: {', '.join(items[:3])}{more}")
  raise EvaluationError(f"{where}: the encoder weights do not fit the model config "
                        f"({'; '.join(problems)}). {hint}".strip())


def load_encoder(setup: Setup, sample_x: np.ndarray) -> tuple[dict, int | None, str]:
  """`(variables, checkpoint_step, description)` of the encoder to evaluate.

  Args:
    setup: from `resolve`.
    sample_x: `(n, 3, T, V, M)` a few input samples (shapes only).

  Returns:
    `{"params", "batch_stats"}` as float32 device arrays; the pretraining step (None for a
    PyTorch checkpoint or a random init); a one-line description of the source.
  """
  encoder, x = setup.encoder, jnp.asarray(sample_x)
  key = jax.random.PRNGKey(setup.config.seed)
  if setup.source == RANDOM_INIT:
    variables = jax.jit(functools.partial(encoder.init, train=False))(key, x)
    return dict(variables), None, f"random initialisation (seed {setup.config.seed})"
  expected = jax.eval_shape(functools.partial(encoder.init, train=False), key, x)
  variables, step, where = checkpoint.load_encoder_variables(setup.source, encoder)
  hint = ("Set the model.* fields to those of the pretraining run." if setup.pretrain_config
          is None else f"Do not override model.* fields of {setup.pretrain_config_path}.")
  if not os.path.isdir(setup.source) and encoder.frest_blocks:
    hint = ("A PyTorch ST-GCN checkpoint has no FreST weights: evaluate it with "
            "--config.model.frest_blocks='()'.")
  _check_structure(expected, variables, where, hint)
  variables = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), variables)
  return variables, step, where


def _finetune(setup: Setup, variables: dict, train: pipeline.Dataset, test: pipeline.Dataset,
              num_classes: int) -> ProtocolOutput:
  """Fine-tunes encoder + head on a class-balanced label subset; returns the report data.

  The training runs data-parallel on this host's devices (`freqjax.evaluation.finetune`);
  the test pass uses the fine-tuned encoder in inference mode on one device.
  """
  c = setup.config
  f = c.finetune
  if not 0.0 < f.label_fraction <= 1.0:
    raise EvaluationError(f"finetune.label_fraction must be in (0, 1]; got {f.label_fraction}.")
  if f.label_fraction < 1.0:
    indices = subsets.class_balanced_subset(train.labels, f.label_fraction, c.seed)
  else:
    indices = np.arange(len(train), dtype=np.int64)
  labelled = pipeline.Subset(train, indices)
  backend = c.parallel.backend
  tuned = finetune.train(setup.encoder, variables, labelled, num_classes, f,
                         stream=c.data.stream, seed=c.seed, prefetch=c.data.prefetch,
                         backend=backend, name=setup.name)

  test_features, test_labels = extract_features(
      setup.encoder, tuned.encoder_variables, test, batch_size=c.features.batch_size,
      stream=c.data.stream, prefetch=c.data.prefetch, desc="test features")
  logits = np.asarray(jax.jit(LinearClassifier(num_classes).apply)(
      {"params": tuned.head_params}, test_features))
  labelled_samples = None
  if f.label_fraction < 1.0:
    names = getattr(train, "sample_names", None)
    labelled_samples = tuple(names[i] if names is not None else int(i) for i in indices)
  record = records.FinetuneRecord(
      encoder_mode=f.encoder_mode,
      label_fraction=f.label_fraction,
      num_labelled=len(labelled),
      num_labelled_per_class=tuple(
          int(n) for n in np.bincount(labelled.labels, minlength=num_classes)),
      batch_size=tuned.batch_size,
      num_devices=tuned.num_devices,
      parallel_backend=tuned.backend,
      steps_per_epoch=tuned.steps_per_epoch,
      num_steps=tuned.num_steps,
      train_seconds=tuned.train_seconds,
      curve=tuned.curve,
      labelled_samples=labelled_samples)
  return ProtocolOutput(logits, test_labels, record)


def _linear(setup: Setup, variables: dict, train, test, num_classes: int) -> ProtocolOutput:
  c, lin = setup.config, setup.config.linear
  start = time.perf_counter()
  kwargs = dict(batch_size=c.features.batch_size, stream=c.data.stream,
                prefetch=c.data.prefetch)
  train_x, train_y = extract_features(setup.encoder, variables, train, desc="train features",
                                      **kwargs)
  test_x, test_y = extract_features(setup.encoder, variables, test, desc="test features",
                                    **kwargs)
  feature_seconds = time.perf_counter() - start
  probe = dict(num_classes=num_classes, epochs=lin.epochs, batch_size=lin.batch_size,
               learning_rate=lin.learning_rate, momentum=lin.momentum,
               weight_decay=lin.weight_decay, decay_epochs=tuple(lin.decay_epochs),
               decay_factor=lin.decay_factor, l2_normalize=lin.l2_normalize,
               standardize=lin.standardize, seed=c.seed)
  full = linear_probe.train_linear_probe(train_x, train_y, test_x, test_y,
                                         desc=f"{setup.name} probe", **probe)
  minival_selection = None
  if lin.minival_size:
    # A fraction of train below 1, a sample count from 1 on.
    size = int(lin.minival_size) if lin.minival_size >= 1 else float(lin.minival_size)
    fit, held_out = subsets.minival_split(train_y, size, c.seed)
    selection = linear_probe.train_linear_probe(
        train_x[fit], train_y[fit], test_x, test_y, minival_features=train_x[held_out],
        minival_labels=train_y[held_out], desc=f"{setup.name} probe (minival)", **probe)
    minival_selection = records.MinivalSelection(
        num_train=selection["num_train"],
        num_minival=selection["num_minival"],
        minival_epoch=selection["minival_epoch"],
        minival_top1_at_minival_epoch=selection["minival_top1_at_minival_epoch"],
        test_top1_at_minival_epoch=selection["test_top1_at_minival_epoch"],
        test_top5_at_minival_epoch=selection["test_top5_at_minival_epoch"],
        test_top1_last_epoch=selection["test_top1"],
        minival_curve=selection["curve"]["minival_top1"])
  record = records.LinearProbeRecord(
      reported=records.LinearProbeRecord.reported_for(lin.standardize),
      test_top1_last_epoch=full["test_top1"],
      test_top5_last_epoch=full["test_top5"],
      best_test_top1_over_epochs=full["best_test_top1_over_epochs"],
      best_test_top1_epoch=full["best_test_top1_epoch"],
      num_train=full["num_train"],
      feature_dim=int(train_x.shape[1]),
      # The recipe's probe is not scale-invariant (raw features, fixed lr): record the scale.
      train_feature_norm_mean=float(np.mean(np.linalg.norm(train_x, axis=1))),
      feature_seconds=feature_seconds,
      steps_per_epoch=full["steps_per_epoch"],
      curve=full["curve"],
      minival_selection=minival_selection)
  return ProtocolOutput(full["test_logits"], test_y, record, test_features=test_x)


def _knn(setup: Setup, variables: dict, train, test, num_classes: int) -> ProtocolOutput:
  c = setup.config
  kwargs = dict(batch_size=c.features.batch_size, stream=c.data.stream,
                prefetch=c.data.prefetch)
  train_x, train_y = extract_features(setup.encoder, variables, train, desc="train features",
                                      **kwargs)
  test_x, test_y = extract_features(setup.encoder, variables, test, desc="test features",
                                    **kwargs)
  result = knn_lib.knn_evaluate(train_x, train_y, test_x, test_y, num_classes=num_classes,
                                k=c.knn.k, temperature=c.knn.temperature)
  record = records.KnnRecord(k=result["k"], temperature=result["temperature"],
                             num_train=result["num_train"])
  return ProtocolOutput(result["test_scores"], test_y, record, test_features=test_x)


def class_names_for(config: ml_collections.ConfigDict, num_classes: int) -> list[str] | None:
  """The report's class names: `config.class_names`, or a guess from the data (None)."""
  choice = config.class_names
  if choice == "":
    return None
  if choice == "synthetic":
    names = list(classes.SYNTHETIC_CLASS_NAMES)
  elif choice is not None:
    try:
      names = list(classes.class_names(choice))
    except ValueError as e:
      raise EvaluationError(f"class_names: {e} (or synthetic, or '' for none)") from None
  else:
    manifest = os.path.join(config.data.path, "manifest.json")
    by_count = {60: "ntu60", 120: "ntu120", 51: "pku_mmd"}
    if os.path.isfile(manifest):
      with open(manifest, encoding="utf-8") as f:
        names = json.load(f).get("class_names")
      if names is None or len(names) != num_classes:
        return None
    elif num_classes in by_count:
      names = list(classes.class_names(by_count[num_classes]))
    else:
      return None
  if len(names) != num_classes:
    raise EvaluationError(f"class_names {choice!r} has {len(names)} names but the data has "
                          f"{num_classes} classes.")
  return names


def load_splits(config: ml_collections.ConfigDict):
  """`(train, test, num_classes)` datasets of the resolved data config."""
  d = config.data
  train = readers.load_dataset(d.format, d.path, d.split, num_frames=d.num_frames,
                               num_classes=d.num_classes)
  test = readers.load_dataset(d.format, d.path, d.test_split, num_frames=d.num_frames,
                              num_classes=d.num_classes or train.num_classes)
  return train, test, d.num_classes or max(train.num_classes, test.num_classes)


def evaluate(config: ml_collections.ConfigDict, workdir: str) -> Evaluation:
  """Runs `config.protocol` on the encoder of `workdir` (or `config.init_from`).

  Writes the report `workdir/eval/<name>/` and returns its numbers (see `Evaluation`).
  """
  setup = resolve(config, workdir)
  c = setup.config
  train, test, num_classes = load_splits(c)
  c.data.num_classes = num_classes
  variables, step, where = load_encoder(setup, train.read(np.arange(min(2, len(train)))))
  tqdm.tqdm.write(f"{setup.name}: encoder from {where}; {len(train)} train / {len(test)} "
                  f"test samples of {c.data.path} ({c.data.stream} stream, "
                  f"{c.data.num_frames} frames, {num_classes} classes).")
  run = {"linear": _linear, "transfer": _linear, "knn": _knn, "semi": _finetune,
         "finetune": _finetune}[c.protocol]
  start = time.perf_counter()
  out = run(setup, variables, train, test, num_classes)
  run_record = records.RunRecord(
      encoder=where, seconds=time.perf_counter() - start, num_train_split=len(train),
      train_split=c.data.split, test_split=c.data.test_split,
      pretrain_config=setup.pretrain_config, pretrain_config_path=setup.pretrain_config_path)
  out_dir = report.report_dir(workdir, setup.name)
  summary = report.write_report(out_dir, protocol=setup.name, test_logits=out.test_logits,
                                test_labels=out.test_labels,
                                class_names=class_names_for(c, num_classes), config=c,
                                checkpoint_step=step,
                                extra=records.extra_json(out.record, run_record),
                                test_features=out.test_features if c.report_embedding else None)
  with open(out_dir / "results.json", encoding="utf-8") as f:
    results = json.load(f)
  return Evaluation(protocol=c.protocol, name=setup.name, test_top1=results["test_top1"],
                    test_top5=results["test_top5"], num_test=results["num_test_samples"],
                    checkpoint_step=step, report_dir=str(out_dir), summary=summary,
                    record=out.record, run_record=run_record)
