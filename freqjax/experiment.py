"""A benchmark row or an ablation table in one command: `python -m freqjax.experiment`.

    python -m freqjax.experiment --benchmark ntu60_xsub --protocols linear,knn,semi1
    python -m freqjax.experiment --synthetic --protocols knn,linear_std \\
        --ablate no_frest,no_fm,no_harmonizer,moco --seeds 0,1,2

For each variant (MICA as configured, then each `--ablate` variant), each seed and each
stream (`--streams`, default joint, bone, motion), in this order:
1. pretrain `configs/pretrain.py:<benchmark>_<stream>` (`--synthetic`: the demo config on
   the demo's data, `freqjax.demo`) in `<root>/<name>/<variant>/seed<k>/<stream>`;
2. evaluate each protocol (`configs/eval.py:<protocol>`, plus `linear_std`: the linear
   probe on standardised features) on that pretraining workdir;
3. per protocol, fuse the streams' saved test logits (`freqjax.evaluation.ensemble`; with
   joint, bone and motion this is the field's "3s" ensemble) into
   `<variant>/seed<k>/ensemble/<report name>`.
Then `<root>/<name>/results.md` and `results.json` hold one row per variant in the layout
of the field's tables (each protocol's streams and ensemble; mean ± std over seeds), the
published numbers of SkeletonCLR, AimCLR, CMD and C2VL beside MICA's row, the config
hashes, checkpoint steps and wall times of every stage.

Resumable: a stage whose outputs exist and whose config equals this run's is skipped
(printed as `[skip]`), so an interrupted experiment is continued by running the same
command again; pretraining resumes from its last checkpoint. A stage whose existing
outputs were made with another config is an error that names the fields: use another
`--name`, or delete the folder it names. `<root>/<name>/stages.json` keeps what each
stage measured when it ran (times, steps), for the tables of later invocations.

With `--synthetic`, every seed trains and evaluates on the same generated data (the
demo's, seed 0): seeds vary initialisation, augmentation and batches, as over the
published benchmarks.

`--ablate` takes the named variants of `ABLATIONS` or `name:key=value,key=value` for a
custom one (pretraining-config fields). `--set key=value` changes a pretraining-config
field of every run, `--set eval.key=value` an eval-config field (e.g.
`eval.linear.epochs=10`). Run from the repository root (it reads `configs/`).
"""
import argparse
import ast
from collections.abc import Callable, Mapping, Sequence
import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
import shlex
import sys
import time
from typing import Any

from freqjax import cli
from freqjax import xla_env

xla_env.configure()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import tqdm  # noqa: E402

from freqjax import demo  # noqa: E402
from freqjax.checkpoints import store as checkpoint  # noqa: E402
from freqjax.data import pipeline, readers  # noqa: E402
from freqjax.evaluation import ensemble  # noqa: E402
from freqjax.evaluation import report  # noqa: E402
from freqjax.evaluation import run as evaluation  # noqa: E402
from freqjax.pretraining import loop, resume  # noqa: E402
from freqjax.visualize import curves  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

FULL = "mica"  # the variant without overrides: MICA as configured
SYNTHETIC = "synthetic"
STREAMS = ("joint", "bone", "motion")
# Evaluation protocols: configs/eval.py's, and `linear_std` (the linear probe on features
# standardised with the training split's statistics, scale-invariant; as in the demo).
PROTOCOLS = ("linear", "linear_std", "knn", "semi1", "semi10", "finetune")

# Named ablations: pretraining-config overrides (docs/method.md, "Total loss", "FreST").
ABLATIONS: dict[str, dict[str, Any]] = {
    "no_frest": {"model.frest_blocks": ()},
    "no_fm": {"fm.weight": 0.0},
    "no_harmonizer": {"harmonizer.weight": 0.0},
    # MoCo with FreST but no text branch: MICA minus this is what the text losses add.
    "no_text": {"fm.weight": 0.0, "harmonizer.weight": 0.0},
    # Plain MoCo (SkeletonCLR's objective on MICA's encoder without FreST): InfoNCE only.
    "moco": {"fm.weight": 0.0, "harmonizer.weight": 0.0, "model.frest_blocks": ()},
}

# Published linear-evaluation top-1 (%), "joint" = the joint stream alone, "3s" = the
# joint + bone + motion ensemble. Sources:
# - SkeletonCLR: as reported in CrosSCLR, L. Li, M. Wang, B. Ni, H. Wang, J. Yang, W.
#   Zhang, "3D Human Action Representation Learning via Cross-View Consistency Pursuit",
#   CVPR 2021 (arXiv:2104.14466).
# - AimCLR: T. Guo, H. Liu, Z. Chen, M. Liu, T. Wang, R. Ding, "Contrastive Learning from
#   Extremely Augmented Skeleton Sequences for Self-supervised Action Recognition", AAAI
#   2022 (arXiv:2112.03590).
# - CMD: Y. Mao, W. Zhou, Z. Lu, J. Deng, H. Li, "CMD: Self-supervised 3D Action
#   Representation Learning with Cross-modal Mutual Distillation", ECCV 2022
#   (arXiv:2208.12448).
# - C2VL: Y. Chen, T. He, J. Fu, L. Wang, J. Guo, T. Hu, H. Cheng, "Vision-Language Meets
#   the Skeleton: Progressively Distillation with Cross-Modal Knowledge for 3D Action
#   Representation Learning", 2024 (arXiv:2405.20606). Its numbers could not be checked
#   against the paper here, so its cells are empty.
# The 3s numbers of SkeletonCLR, AimCLR and CMD were checked against later papers' tables
# that quote them, and AimCLR's NTU-60 joint numbers against its repository's released
# models (74.34, 79.68); the other joint numbers are as transcribed from the papers' tables,
# not re-checked. Semi-supervised, kNN and PKU-MMD columns are left empty: not checked.
# A cell without a number is empty, never estimated.
PUBLISHED_METHODS = ("SkeletonCLR", "AimCLR", "CMD", "C2VL")
_BENCHMARK_ORDER = ("ntu60_xsub", "ntu60_xview", "ntu120_xsub", "ntu120_xset")
_LINEAR_TOP1 = {
    # method: {stream column: values in _BENCHMARK_ORDER}
    "SkeletonCLR": {"joint": (68.3, 76.4, 56.8, 55.9), "3s": (75.0, 79.8, 60.7, 62.6)},
    "AimCLR": {"joint": (74.3, 79.7, 63.4, 63.4), "3s": (78.9, 83.8, 68.2, 68.8)},
    "CMD": {"joint": (79.8, 86.9, 70.3, 71.5), "3s": (84.1, 90.9, 74.7, 76.1)},
    "C2VL": {},
}
PUBLISHED: dict[str, dict[str, dict[str, dict[str, float]]]] = {
    benchmark: {"linear": {method: {column: values[i] for column, values in columns.items()}
                           for method, columns in _LINEAR_TOP1.items()}}
    for i, benchmark in enumerate(_BENCHMARK_ORDER)}


class ExperimentError(cli.UserError, ValueError):
  """A flag, config override or existing experiment folder that does not fit the run."""


def published(method: str, benchmark: str, protocol: str, column: str) -> float | None:
  """A published top-1 (%) or None where the paper reports none (or it is unchecked).

  Args:
    method: one of `PUBLISHED_METHODS`.
    benchmark: e.g. `ntu60_xsub`.
    protocol: e.g. `linear`.
    column: `joint`, `bone`, `motion` or `3s` (the joint + bone + motion ensemble).
  """
  return PUBLISHED.get(benchmark, {}).get(protocol, {}).get(method, {}).get(column)


@dataclasses.dataclass(frozen=True)
class Variant:
  """A row of the ablation table: a name and its pretraining-config overrides."""
  name: str
  overrides: Mapping[str, Any]


def _format_value(value: Any) -> str:
  return "()" if value == () else str(value)


def _parse_value(text: str) -> Any:
  """A Python literal (`0`, `0.5`, `()`, `(9,)`, `True`, `'x'`) or else the plain string."""
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_assignments(specs: Sequence[str], flag: str) -> dict[str, Any]:
  """`["a.b=1", ...]` -> `{"a.b": 1, ...}` (values as `_parse_value` reads them)."""
  out = {}
  for spec in specs:
    key, sep, value = spec.partition("=")
    if not sep or not key.strip():
      raise ExperimentError(f"{flag} {spec!r}: expected key=value, e.g. fm.weight=0.")
    out[key.strip()] = _parse_value(value.strip())
  return out


def parse_ablations(text: str | None) -> list[Variant]:
  """`--ablate`: a comma-separated list of named ablations (`ABLATIONS`) and custom ones,
  `name:key=value,key=value` (each `key=value` after a custom name belongs to it)."""
  specs: list[tuple[str, list[str]]] = []
  for part in [p.strip() for p in (text or "").split(",") if p.strip()]:
    name, sep, assignment = part.partition(":")
    if sep:
      specs.append((name, [assignment]))
    elif "=" in part:
      if not specs or not specs[-1][1]:
        raise ExperimentError(f"--ablate {part!r}: a key=value needs a custom variant "
                              "before it, e.g. --ablate small_queue:moco.queue_size=64.")
      specs[-1][1].append(part)
    else:
      specs.append((part, []))
  variants = []
  for name, assignments in specs:
    if assignments:
      overrides = parse_assignments(assignments, f"--ablate {name}:")
    elif name in ABLATIONS:
      overrides = ABLATIONS[name]
    else:
      raise ExperimentError(
          f"--ablate {name!r}: unknown ablation; use one of {', '.join(ABLATIONS)} or "
          "name:key=value,key=value for your own.")
    if name == FULL or not name.replace("_", "").replace("-", "").isalnum():
      raise ExperimentError(f"--ablate {name!r}: a variant name must be letters, digits, "
                            f"'_' or '-', and not {FULL!r} (the full method's row).")
    if name in [v.name for v in variants]:
      raise ExperimentError(f"--ablate: the variant {name!r} is given twice.")
    variants.append(Variant(name, dict(overrides)))
  return variants


def apply_overrides(config: ml_collections.ConfigDict, overrides: Mapping[str, Any],
                    flag: str) -> None:
  """Sets `config.<key> = value` for each override, checking the field and its type.

  Raises:
    ExperimentError: a field that does not exist or a value of the wrong type, named as
      the user typed it: `flag` + key (`flag` e.g. "--set ", "--set eval.", "--ablate x:").
  """
  for key, value in overrides.items():
    *parents, leaf = key.split(".")
    node = config
    try:
      for part in parents:
        node = node[part]
      old = node[leaf]
    except (KeyError, AttributeError, TypeError):
      raise ExperimentError(f"{flag}{key}: no such config field.") from None
    if isinstance(old, ml_collections.ConfigDict):
      raise ExperimentError(f"{flag}{key}: a group of fields, not one field.")
    if isinstance(old, tuple) or (old is None and isinstance(value, list)):
      value = tuple(value) if isinstance(value, (list, tuple)) else (value,)
      # ConfigDict checks that a tuple is a tuple, not what it holds.
      kind = type(old[0]) if isinstance(old, tuple) and old else None
      if kind is not None and not all(isinstance(v, kind) or (kind is float and isinstance(
          v, int)) for v in value):
        raise ExperimentError(f"{flag}{key}={_format_value(value)}: expected a tuple of "
                              f"{kind.__name__}, e.g. {_format_value(old)}.")
    try:
      node[leaf] = value
    except TypeError as e:
      raise ExperimentError(f"{flag}{key}={_format_value(value)}: {e}") from None


def _mismatch_error(path: str, what: str, changes: resume.ConfigChanges,
                    folder: str) -> ExperimentError:
  return ExperimentError(
      f"{path}: the existing {what} was made with another config "
      f"({changes.describe(limit=5)}). Use another --name, or delete {folder} to redo it.")


def as_json(config: Any) -> Any:
  """A config (ConfigDict or mapping) as plain JSON types, tuples as lists."""
  if isinstance(config, ml_collections.ConfigDict):
    config = json.loads(config.to_json_best_effort())
  return report.to_jsonable(config)


def config_hash(config: Any) -> str:
  """The first 12 hex digits of the SHA-256 of the config's canonical JSON (sorted keys)."""
  text = json.dumps(as_json(config), sort_keys=True, separators=(",", ":"))
  return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class Run:
  """One pretraining (variant, seed, stream) and its evaluations."""
  variant: str
  seed: int
  stream: str
  workdir: str
  pretrain_config: ml_collections.ConfigDict
  eval_configs: Mapping[str, ml_collections.ConfigDict]  # protocol -> config

  @property
  def label(self) -> str:
    return f"{self.variant}/seed{self.seed}/{self.stream}"


@dataclasses.dataclass(frozen=True)
class Plan:
  """Everything an experiment runs, resolved from the command line before anything runs."""
  name: str
  benchmark: str
  root: str  # <root>/<name>
  protocols: tuple[str, ...]
  streams: tuple[str, ...]
  seeds: tuple[int, ...]
  variants: tuple[Variant, ...]
  runs: tuple[Run, ...]
  synthetic_samples: int | None  # None: not synthetic
  command: str | None = None


def _eval_config(eval_configs, pretrain_configs, protocol: str, seed: int,
                 synthetic: bool) -> ml_collections.ConfigDict:
  if synthetic and protocol in ("linear", "linear_std", "knn"):
    # The demo's own: its linear_std and its k for classes of ~75 training samples.
    _, configs = demo.demo_configs(eval_configs, pretrain_configs, seed)
    return {evaluation.report_name(c): c for c in configs}[protocol]
  if protocol == "linear_std":
    config = eval_configs.get_config("linear")
    config.name = "linear_std"
    config.linear.standardize = True
  else:
    config = eval_configs.get_config(protocol)
  config.seed = seed
  return config


def _split_list(text: str, flag: str) -> list[str]:
  items = [s.strip() for s in text.split(",") if s.strip()]
  if not items:
    raise ExperimentError(f"{flag} is empty.")
  if len(set(items)) != len(items):
    raise ExperimentError(f"{flag} {text!r} names an item twice.")
  return items


def benchmarks(pretrain_configs) -> list[str]:
  """The benchmarks of configs/pretrain.py, e.g. `ntu60_xsub`."""
  return [f"{dataset}_{b}" for dataset, (_, names, _, _) in pretrain_configs.DATASETS.items()
          for b in names]


def make_plan(pretrain_configs, eval_configs, *, benchmark: str | None, protocols: str,
              streams: str = ",".join(STREAMS), seeds: str = "0", ablate: str | None = None,
              sets: Sequence[str] = (), name: str | None = None, root: str = "experiments",
              synthetic: bool = False, config_variant: str | None = None,
              synthetic_samples: int = demo.NUM_SAMPLES, command: str | None = None) -> Plan:
  """Resolves every run's pretraining and eval configs; raises ExperimentError on bad flags.

  Args mirror the command-line flags (see `main`); `pretrain_configs`/`eval_configs` are
  the `configs.pretrain`/`configs.eval` modules.
  """
  if synthetic:
    if benchmark not in (None, SYNTHETIC):
      raise ExperimentError(f"--benchmark {benchmark} and --synthetic: --synthetic runs the "
                            "demo's synthetic data; drop one of them.")
    benchmark = SYNTHETIC
    config_variant = config_variant or "demo"
    if config_variant not in ("demo", "test"):
      raise ExperimentError(f"--config-variant {config_variant!r}: use demo or test "
                            "(configs/pretrain.py's synthetic configs).")
  else:
    if config_variant:
      raise ExperimentError("--config-variant is for --synthetic runs; a benchmark uses "
                            "configs/pretrain.py:<benchmark>_<stream>.")
    known = benchmarks(pretrain_configs)
    if benchmark not in known:
      raise ExperimentError(f"--benchmark {benchmark!r}: use one of {', '.join(known)}, or "
                            "--synthetic.")
  protocol_list = _split_list(protocols, "--protocols")
  for protocol in protocol_list:
    if protocol not in PROTOCOLS:
      raise ExperimentError(f"--protocols: unknown protocol {protocol!r}; use "
                            f"{', '.join(PROTOCOLS)}.")
  stream_list = _split_list(streams, "--streams")
  for stream in stream_list:
    if stream not in STREAMS:
      raise ExperimentError(f"--streams: unknown stream {stream!r}; use {', '.join(STREAMS)}.")
  try:
    seed_list = [int(s) for s in _split_list(seeds, "--seeds")]
  except ValueError:
    raise ExperimentError(f"--seeds {seeds!r}: expected integers, e.g. 0,1,2.") from None
  overrides = parse_assignments(sets, "--set")
  eval_overrides = {k[len("eval."):]: v for k, v in overrides.items() if k.startswith("eval.")}
  pretrain_overrides = {k: v for k, v in overrides.items() if not k.startswith("eval.")}
  variants = [Variant(FULL, {}), *parse_ablations(ablate)]
  name = name or (benchmark if config_variant in (None, "demo") else
                  f"{benchmark}_{config_variant}")
  if not name or os.sep in name or name.startswith("."):
    raise ExperimentError(f"--name {name!r}: a plain folder name.")
  experiment_root = os.path.join(root, name)

  runs = []
  for variant in variants:
    for seed in seed_list:
      for stream in stream_list:
        config = pretrain_configs.get_config(config_variant if synthetic
                                             else f"{benchmark}_{stream}")
        config.data.stream = stream
        config.seed = seed
        apply_overrides(config, pretrain_overrides, "--set ")
        apply_overrides(config, variant.overrides, f"--ablate {variant.name}:")
        evals = {}
        for protocol in protocol_list:
          eval_config = _eval_config(eval_configs, pretrain_configs, protocol, seed, synthetic)
          apply_overrides(eval_config, eval_overrides, "--set eval.")
          evals[protocol] = eval_config
        runs.append(Run(variant.name, seed, stream,
                        os.path.join(experiment_root, variant.name, f"seed{seed}", stream),
                        config, evals))
  return Plan(name=name, benchmark=benchmark, root=experiment_root,
              protocols=tuple(protocol_list), streams=tuple(stream_list),
              seeds=tuple(seed_list), variants=tuple(variants), runs=tuple(runs),
              synthetic_samples=synthetic_samples if synthetic else None, command=command)


def _total_steps(config: ml_collections.ConfigDict) -> int:
  """The step pretraining ends at (`freqjax.pretraining.loop.pretrain`'s count)."""
  dataset = readers.load_dataset(config.data.format, config.data.path, config.data.split,
                                 num_frames=config.data.num_frames,
                                 num_classes=config.data.num_classes)
  return int(config.optim.epochs
             * pipeline.steps_per_epoch(len(dataset), config.optim.batch_size))


def _latest_step(workdir: str) -> int | None:
  if not os.path.isdir(os.path.join(workdir, checkpoint.CHECKPOINT_DIR)):
    return None
  mngr = checkpoint.manager(workdir)
  try:
    return mngr.latest_step()
  finally:
    mngr.close()


def _check_pretraining(run: Run) -> None:
  """Raises ExperimentError if `run.workdir` holds a pretraining of another config."""
  path = os.path.join(run.workdir, evaluation.PRETRAIN_CONFIG)
  if not os.path.exists(path):
    return
  with open(path, encoding="utf-8") as f:
    try:
      existing = json.load(f)
    except json.JSONDecodeError:
      existing = {}
  changes = resume.compare_configs(resume.flatten(existing),
                                   resume.flatten(as_json(run.pretrain_config)),
                                   ignore=resume.changes_no_state)
  if changes:
    raise _mismatch_error(path, "pretraining", changes, run.workdir)


def _training_curves(workdir: str) -> str | None:
  """The run's training_curves.png, drawn from metrics.jsonl unless it is up to date."""
  metrics_path = os.path.join(workdir, "metrics.jsonl")
  picture = os.path.join(workdir, curves.OUT_NAME)
  if not os.path.exists(metrics_path):
    return None
  if (not os.path.exists(picture)
      or os.path.getmtime(picture) < os.path.getmtime(metrics_path)):
    curves.plot_training_curves(metrics_path, picture)
  return picture


def _minutes(seconds: float | None) -> str:
  if seconds is None:
    return "?"
  return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


class _Journal:
  """`<root>/stages.json`: what each finished stage measured, kept across re-runs (a
  skipped stage reports the time it took when it ran)."""

  def __init__(self, root: str):
    self.path = os.path.join(root, "stages.json")
    self.entries: dict[str, dict[str, Any]] = {}
    if os.path.exists(self.path):
      with open(self.path, encoding="utf-8") as f:
        try:
          self.entries = json.load(f)
        except json.JSONDecodeError:
          self.entries = {}

  def get(self, key: str) -> dict[str, Any]:
    return dict(self.entries.get(key, {}))

  def put(self, key: str, entry: dict[str, Any]) -> None:
    self.entries[key] = report.to_jsonable(entry)
    tmp = self.path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump(self.entries, f, indent=1, sort_keys=True)
    os.replace(tmp, self.path)


class _Runner:
  """Runs or skips the stages of a plan, one line per finished stage."""

  def __init__(self, plan: Plan, total_steps: Mapping[str, int],
               log: Callable[[str], None], bar: tqdm.tqdm):
    self.plan, self.total_steps, self.log, self.bar = plan, total_steps, log, bar
    self.journal = _Journal(plan.root)

  def _done(self, line: str) -> None:
    self.log(line)
    self.bar.update(1)

  def pretrain(self, run: Run) -> dict[str, Any]:
    key = f"{run.label}/pretrain"
    total = self.total_steps[run.label]
    entry = self.journal.get(key)
    step = _latest_step(run.workdir)
    if step == total and os.path.exists(os.path.join(run.workdir, evaluation.PRETRAIN_CONFIG)):
      _check_pretraining(run)
      entry.update(checkpoint_step=step, skipped=True)
      self._done(f"[skip] [pretrain] {run.label}: step {step} of {total} done, config "
                 "matches")
    else:
      _check_pretraining(run)
      self.bar.set_postfix_str(f"pretrain {run.label}")
      start = time.perf_counter()
      state = loop.pretrain(run.pretrain_config, run.workdir)
      entry = {"checkpoint_step": int(state.step), "seconds": time.perf_counter() - start,
               "resumed_from": step}
      self.journal.put(key, entry)
      self._done(f"[pretrain] {run.label}: {entry['checkpoint_step'] - (step or 0)} steps in "
                 f"{_minutes(entry['seconds'])}"
                 + (f" (resumed at step {step})" if step else ""))
    entry["config_hash"] = config_hash(run.pretrain_config)
    entry["workdir"] = run.workdir
    entry["curves"] = _training_curves(run.workdir)
    return entry

  def evaluate(self, run: Run, protocol: str, checkpoint_step: int) -> dict[str, Any]:
    config = run.eval_configs[protocol]
    setup = evaluation.resolve(config, run.workdir)
    out_dir = report.report_dir(run.workdir, setup.name)
    results_path = out_dir / "results.json"
    wanted = as_json(setup.config)
    key = f"{run.label}/{protocol}"
    entry = self.journal.get(key)
    if results_path.exists():
      existing = json.loads(results_path.read_text(encoding="utf-8"))
      # The report is of this config and of this checkpoint: the step is compared as one
      # more field (no config has a top-level `checkpoint_step`).
      changes = resume.compare_configs(
          resume.flatten(existing.get("config") or {})
          | {"checkpoint_step": existing.get("checkpoint_step")},
          resume.flatten(wanted) | {"checkpoint_step": checkpoint_step},
          ignore=resume.changes_no_state)
      if changes:
        raise _mismatch_error(str(results_path), f"{setup.name} report", changes,
                              str(out_dir))
      entry.update(top1=existing["test_top1"], top5=existing["test_top5"], skipped=True)
      self._done(f"[skip] [{protocol}] {run.label}: top-1 {entry['top1']:.1f} % (report "
                 "exists, config matches)")
    else:
      self.bar.set_postfix_str(f"{protocol} {run.label}")
      start = time.perf_counter()
      result = evaluation.evaluate(config, run.workdir)
      entry = {"top1": result.test_top1, "top5": result.test_top5,
               "seconds": time.perf_counter() - start}
      self.journal.put(key, entry)
      self._done(f"[{protocol}] {run.label}: top-1 {entry['top1']:.1f} % "
                 f"({_minutes(entry['seconds'])})")
    entry.update(report_dir=str(out_dir), config_hash=config_hash(wanted),
                 checkpoint_step=checkpoint_step)
    return entry

  def fuse(self, variant: str, seed: int, protocol: str, report_dirs: Mapping[str, str]
           ) -> dict[str, Any]:
    streams = {s: pathlib.Path(d) / "test_logits.npy" for s, d in report_dirs.items()}
    name = os.path.basename(next(iter(report_dirs.values())))
    out_dir = os.path.join(self.plan.root, variant, f"seed{seed}", "ensemble", name)
    results_path = os.path.join(out_dir, "results.json")
    label = f"{variant}/seed{seed}/{'+'.join(streams)}"
    key = f"{variant}/seed{seed}/ensemble/{protocol}"
    entry = self.journal.get(key)
    newest_input = max(os.path.getmtime(p) for p in streams.values())
    existing = None
    if os.path.exists(results_path) and os.path.getmtime(results_path) >= newest_input:
      with open(results_path, encoding="utf-8") as f:
        existing = json.load(f)
      if (existing.get("config") or {}).get("streams") != {s: str(p) for s, p in
                                                          streams.items()}:
        existing = None  # other streams fused here: fuse again (cheap, nothing is lost)
    if existing is not None:
      entry.update(top1=existing["test_top1"], top5=existing["test_top5"], skipped=True)
      self._done(f"[skip] [{protocol} ensemble] {label}: top-1 {entry['top1']:.1f} % "
                 "(inputs unchanged)")
    else:
      start = time.perf_counter()
      results, _ = ensemble.run_ensemble(streams, out_dir=pathlib.Path(out_dir))
      entry = {"top1": results["fused"]["top1"], "top5": results["fused"]["top5"],
               "weights": results["weights"], "seconds": time.perf_counter() - start}
      self.journal.put(key, entry)
      self._done(f"[{protocol} ensemble] {label}: top-1 {entry['top1']:.1f} %")
    entry["report_dir"] = out_dir
    return entry


def run_experiment(plan: Plan, log: Callable[[str], None] = tqdm.tqdm.write
                   ) -> dict[str, Any]:
  """Runs (or skips) every stage of `plan` and writes results.json and results.md.

  Returns:
    The content of `results.json` (see `summarize`).
  """
  start = time.perf_counter()
  os.makedirs(plan.root, exist_ok=True)
  if plan.synthetic_samples is not None:
    prepared = set()
    for run in plan.runs:
      paths = (run.pretrain_config.data.path, run.pretrain_config.text.path)
      if paths not in prepared:
        # The data and text of seed 0 for every run: seeds vary training, not the data.
        data_config = run.pretrain_config.copy_and_resolve_references()
        data_config.seed = 0
        demo.prepare_data(data_config, plan.synthetic_samples, log)
        prepared.add(paths)
  total_steps = {}
  for run in plan.runs:  # every run's data and workdir, before hours of compute
    total_steps[run.label] = _total_steps(run.pretrain_config)
    _check_pretraining(run)

  ensembles = len(plan.streams) > 1
  per_seed = len(plan.streams) * (1 + len(plan.protocols)) + (
      len(plan.protocols) if ensembles else 0)
  bar = tqdm.tqdm(total=len(plan.variants) * len(plan.seeds) * per_seed, unit="stage",
                  desc=f"experiment {plan.name}", dynamic_ncols=True)
  runner = _Runner(plan, total_steps, log, bar)
  records: dict[str, dict[str, Any]] = {}
  try:
    for variant in plan.variants:
      for seed in plan.seeds:
        seed_record = records.setdefault(variant.name, {}).setdefault(
            f"seed{seed}", {"streams": {}, "ensemble": {}})
        for run in [r for r in plan.runs if r.variant == variant.name and r.seed == seed]:
          pretrained = runner.pretrain(run)
          evals = {protocol: runner.evaluate(run, protocol, pretrained["checkpoint_step"])
                   for protocol in plan.protocols}
          seed_record["streams"][run.stream] = {"pretrain": pretrained, "eval": evals}
        if ensembles:
          for protocol in plan.protocols:
            seed_record["ensemble"][protocol] = runner.fuse(
                variant.name, seed, protocol,
                {s: seed_record["streams"][s]["eval"][protocol]["report_dir"]
                 for s in plan.streams})
  finally:
    bar.close()
  results = summarize(plan, records, time.perf_counter() - start)
  with open(os.path.join(plan.root, "results.json"), "w", encoding="utf-8") as f:
    json.dump(report.to_jsonable(results), f, indent=2, allow_nan=False)
    f.write("\n")
  with open(os.path.join(plan.root, "results.md"), "w", encoding="utf-8") as f:
    f.write(format_markdown(results))
  log(f"Results: {os.path.join(plan.root, 'results.md')} and results.json "
      f"({_minutes(results['seconds'])}).")
  return results


def ensemble_column(streams: Sequence[str]) -> str:
  """The ensemble's column name: `3s` for joint + bone + motion (the field's), else
  `<n>s`."""
  return f"{len(streams)}s"


def mean_std(values: Sequence[float]) -> dict[str, Any]:
  """Mean and sample standard deviation (ddof 1; None for one value) of top-1 values."""
  values = [float(v) for v in values]
  return {"mean": float(np.mean(values)),
          "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
          "values": values}


def summarize(plan: Plan, records: Mapping[str, Any], seconds: float) -> dict[str, Any]:
  """The content of results.json: the plan, every stage's record, and the table rows.

  `rows[variant][protocol][column]` is `mean_std` over the seeds, columns being the
  streams and (with several streams) `ensemble_column(streams)`.
  """
  columns = list(plan.streams) + ([ensemble_column(plan.streams)] if len(plan.streams) > 1
                                  else [])
  rows, hashes = {}, {}
  for variant in plan.variants:
    seeds = records[variant.name]
    rows[variant.name] = {}
    for protocol in plan.protocols:
      row = {}
      for column in columns:
        if column in plan.streams:
          values = [s["streams"][column]["eval"][protocol]["top1"] for s in seeds.values()]
        else:
          values = [s["ensemble"][protocol]["top1"] for s in seeds.values()]
        row[column] = mean_std(values)
      rows[variant.name][protocol] = row
    # One hash per variant: its pretraining configs without the seed, so every seed's
    # runs of one recipe share it.
    configs = {}
    for run in plan.runs:
      if run.variant == variant.name:
        config = as_json(run.pretrain_config)
        config.pop("seed", None)
        configs[run.stream] = config
    hashes[variant.name] = config_hash(configs)
  full_three_streams = tuple(sorted(plan.streams)) == tuple(sorted(STREAMS))
  reference = {}
  for method in PUBLISHED_METHODS:
    reference[method] = {
        protocol: {column: published(method, plan.benchmark, protocol,
                                     "3s" if column == ensemble_column(plan.streams) and
                                     full_three_streams else column)
                   for column in columns}
        for protocol in plan.protocols}
  return {
      "name": plan.name,
      "benchmark": plan.benchmark,
      "root": plan.root,
      "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
      "command": plan.command,
      "accuracy_unit": "percent (test top-1)",
      "protocols": list(plan.protocols),
      "streams": list(plan.streams),
      "columns": columns,
      "seeds": list(plan.seeds),
      "variants": [{"name": v.name, "overrides": dict(v.overrides),
                    "config_hash": hashes[v.name]} for v in plan.variants],
      "rows": rows,
      "published": reference,
      "runs": records,
      "seconds": seconds,
      "stage_seconds": _stage_seconds(records),
  }


def _stage_seconds(records: Mapping[str, Any]) -> float | None:
  """The sum of every stage's recorded time (None if one is unknown)."""
  times = []
  for by_seed in records.values():
    for record in by_seed.values():
      for run in record["streams"].values():
        times += [run["pretrain"].get("seconds")] + [e.get("seconds") for e in
                                                     run["eval"].values()]
      times += [e.get("seconds") for e in record["ensemble"].values()]
  return None if None in times else float(sum(times))


def format_cell(cell: Mapping[str, Any] | None) -> str:
  """`61.2` for one seed, `61.2 ± 0.4` for several; empty for none."""
  if cell is None:
    return ""
  if cell.get("std") is None:
    return f"{cell['mean']:.1f}"
  return f"{cell['mean']:.1f} ± {cell['std']:.1f}"


def _table(header: Sequence[str], body: Sequence[Sequence[str]], text_columns: int = 1
           ) -> list[str]:
  """A Markdown table, the first `text_columns` left-aligned, the numbers right-aligned."""
  lines = ["| " + " | ".join(header) + " |",
           "|" + "|".join("---" if i < text_columns else "---:" for i in range(len(header)))
           + "|"]
  lines += ["| " + " | ".join(row) + " |" for row in body]
  return lines


_PAPERS = {"SkeletonCLR": "CVPR'21, as reported by CrosSCLR", "AimCLR": "AAAI'22",
           "CMD": "ECCV'22", "C2VL": "2024"}


def format_markdown(results: Mapping[str, Any]) -> str:
  """results.md: the benchmark row beside the published ones, the ablation table (with
  several variants) and every run's hash, checkpoint step and times."""
  protocols, columns = results["protocols"], results["columns"]
  header = ["Method"] + [f"{p} {c}" for p in protocols for c in columns]
  seeds = results["seeds"]
  seed_note = (f"mean ± std (sample) over seeds {', '.join(map(str, seeds))}"
               if len(seeds) > 1 else f"seed {seeds[0]}")
  full = results["variants"][0]
  title = results["name"] if results["name"] == results["benchmark"] else (
      f"{results['name']} ({results['benchmark']})")
  lines = [f"# Experiment {title}", ""]
  if results.get("command"):
    lines += [f"`{results['command']}`", ""]
  lines += [f"Test top-1 (%), {seed_note}; `{columns[-1]}` is the fused ensemble of the "
            "streams' test logits (freqjax.evaluation.ensemble)." if len(columns) > 1 else
            f"Test top-1 (%), {seed_note}.", "",
            "## Benchmark row", ""]
  body = []
  if results["benchmark"] != SYNTHETIC:
    for method, by_protocol in results["published"].items():
      body.append([f"{method} ({_PAPERS[method]})"] + [
          "" if by_protocol[p][c] is None else f"{by_protocol[p][c]:.1f}"
          for p in protocols for c in columns])
  body.append([f"**MICA (freqjax)** `{full['config_hash']}`"] + [
      format_cell(results["rows"][full["name"]][p][c]) for p in protocols for c in columns])
  lines += _table(header, body)
  if results["benchmark"] != SYNTHETIC:
    lines += ["", "Published rows: linear evaluation as the papers report it (joint stream "
              "and 3s ensemble); an empty cell is a number the paper does not report or "
              "that freqjax could not check."]
  else:
    lines += ["", "Synthetic data (the demo's): no published numbers. The text is one set "
              "of descriptions per class, so pretraining with text (Feature Modulation, the "
              "Harmonizer) sees the labels through it."]
  if len(results["variants"]) > 1:
    lines += ["", "## Ablation", ""]
    body = [[f"{v['name']}", _overrides_cell(v), f"`{v['config_hash']}`"] + [
        format_cell(results["rows"][v["name"]][p][c]) for p in protocols for c in columns]
        for v in results["variants"]]
    lines += _table(["Variant", "overrides", "config"] + header[1:], body, text_columns=3)
  lines += ["", "## Runs", "", "Times link the training curves and the evaluation reports "
            "(confusion matrix, per-class accuracy, logits).", ""]
  body = []

  def link(text: str, path: str | None) -> str:
    if not path or not results.get("root"):
      return text
    return f"[{text}]({os.path.relpath(path, results['root'])})"

  for variant, by_seed in results["runs"].items():
    for seed, record in by_seed.items():
      for stream, run in record["streams"].items():
        pretrained = run["pretrain"]
        body.append([variant, seed, stream, f"`{pretrained['config_hash']}`",
                     str(pretrained["checkpoint_step"]),
                     link(_minutes(pretrained.get("seconds")), pretrained.get("curves"))]
                    + [link(_minutes(run["eval"][p].get("seconds")),
                            run["eval"][p].get("report_dir")) for p in protocols])
  lines += _table(["variant", "seed", "stream", "config hash", "checkpoint step",
                   "pretrain"] + list(protocols), body, text_columns=4)
  lines += ["", f"All stages together took {_minutes(results.get('stage_seconds'))} when "
            f"they ran; this invocation {_minutes(results['seconds'])} (skipped stages show "
            "the time they took when they ran; `?` where unknown). Per-stage records: "
            "results.json; reports under each run's `eval/` folder.", ""]
  return "\n".join(lines)


def _overrides_cell(variant: Mapping[str, Any]) -> str:
  return ", ".join(f"`{k}={_format_value(tuple(v) if isinstance(v, list) else v)}`"
                   for k, v in variant["overrides"].items()) or "—"


@cli.report_errors("python -m freqjax.experiment")
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m freqjax.experiment", description=__doc__.split("\n", 1)[0],
      epilog="See the module docstring (python -c 'import freqjax.experiment as e; "
      "help(e)') and README.md, 'Experiments'.")
  parser.add_argument("--benchmark", default=None,
                      help="e.g. ntu60_xsub, ntu60_xview, ntu120_xsub, ntu120_xset, "
                      "pku1_xsub (configs/pretrain.py)")
  parser.add_argument("--synthetic", action="store_true",
                      help="the demo's synthetic data and config instead of a benchmark")
  parser.add_argument("--config-variant", default=None,
                      help="with --synthetic: configs/pretrain.py variant, demo (default) "
                      "or test (tiny, for tests)")
  parser.add_argument("--synthetic-samples", type=int, default=demo.NUM_SAMPLES,
                      help="with --synthetic: samples of the generated dataset (default "
                      f"{demo.NUM_SAMPLES}, the demo's)")
  parser.add_argument("--protocols", required=True,
                      help=f"comma-separated, of {', '.join(PROTOCOLS)}")
  parser.add_argument("--streams", default=",".join(STREAMS), help="default joint,bone,motion")
  parser.add_argument("--seeds", default="0", help="comma-separated, e.g. 0,1,2")
  parser.add_argument("--ablate", default=None,
                      help=f"variants besides MICA: {', '.join(ABLATIONS)}, or "
                      "name:key=value,key=value")
  parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="a pretraining-config field (eval.KEY=VALUE: an eval-config "
                      "field) for every run; repeat")
  parser.add_argument("--name", default=None,
                      help="the experiment's folder under --root (default: the benchmark)")
  parser.add_argument("--root", default="experiments")
  cli.add_traceback_flag(parser)
  args = parser.parse_args(argv)
  if args.benchmark is None and not args.synthetic:
    parser.error("give --benchmark (e.g. ntu60_xsub) or --synthetic")
  logging.set_verbosity(logging.ERROR)  # Orbax's INFO/WARNING lines about read-only reads.
  try:
    from configs import eval as eval_configs  # pylint: disable=g-import-not-at-top
    from configs import pretrain as pretrain_configs  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise cli.UserError("configs/ not found: run from the repository root.") from None
  command = "python -m freqjax.experiment " + shlex.join(
      sys.argv[1:] if argv is None else list(argv))
  plan = make_plan(pretrain_configs, eval_configs, benchmark=args.benchmark,
                   protocols=args.protocols, streams=args.streams, seeds=args.seeds,
                   ablate=args.ablate, sets=args.set, name=args.name, root=args.root,
                   synthetic=args.synthetic, config_variant=args.config_variant,
                   synthetic_samples=args.synthetic_samples, command=command)
  run_experiment(plan)
  return 0


if __name__ == "__main__":
  sys.exit(main())
