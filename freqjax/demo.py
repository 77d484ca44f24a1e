"""The synthetic demo, end to end on a CPU: `python -m freqjax.demo --workdir runs/demo`.

1. Generates the synthetic dataset (`data/synthetic/xperformer_tilted`: `GENERATION`, the
   harder variant whose cameras are also raised/lowered and rolled by up to 25 degrees)
   unless it exists.
2. Embeds its class descriptions (`data/synthetic/text.npz`) unless the file exists, with
   a RANDOMLY INITIALISED CLIP text model: no weights can be downloaded here, so the
   language guidance of the demo is not CLIP's (real runs embed with CLIP).
3. Pretrains `configs/pretrain.py:demo` in the workdir (resuming from its checkpoints).
4. Evaluates the pretrained encoder and a randomly initialised encoder of the same config
   (the baseline pretraining has to beat) three ways, and prints the accuracies with
   chance and the reports' paths: the linear recipe (SkeletonCLR's), which is not
   scale-invariant (it favours the encoder whose features are larger, whatever their
   quality); the same probe on standardised features; and cosine kNN.

Why tilted cameras: on the default synthetic data the classes are nearly linearly
separable from the raw coordinates, so a random ST-GCN's features are almost as good as
pretrained ones. Tilting the cameras makes a random encoder's features depend on the view;
the pretrained encoder, whose two views of a sample differ by a random shear, learns to
depend on it far less. The README gives the measured numbers.

`make demo` runs it. Run from the repository root (it reads `configs/`).
"""
import argparse
from collections.abc import Sequence
import json
import os
import sys
import time
from typing import Any

from freqjax import cli
from freqjax import xla_env

xla_env.configure()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # noqa: E402
import ml_collections  # noqa: E402

from freqjax.evaluation import run as evaluation  # noqa: E402
from freqjax.pretraining import loop, resume  # noqa: E402
from freqjax.data import synthetic  # noqa: E402
from freqjax.text import embed  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

# The generated dataset: 2100 samples, 20 performers (half of them for training), seen from
# cameras raised or lowered and rolled by up to 25 degrees (`synthetic.generate`).
NUM_SAMPLES = 2100
GENERATION = {"num_frames": 50, "elevation_degrees": 25.0, "roll_degrees": 25.0}


class DemoError(cli.UserError, ValueError):
  """Existing demo files (data, a pretraining run) made with other settings than the demo's."""


def _check_manifest(path: str, wanted: dict[str, Any]) -> None:
  manifest_path = os.path.join(path, "manifest.json")
  try:
    with open(manifest_path, encoding="utf-8") as f:
      manifest = json.load(f)
  except (OSError, ValueError):  # missing, not UTF-8, not JSON: not the demo's data
    manifest = {}
  differ = [f"{k} {manifest.get(k)!r} (wanted {v!r})" for k, v in wanted.items()
            if manifest.get(k) != v]
  if differ:
    raise DemoError(
        f"{manifest_path}: the data in {path} were not generated with the demo's settings: "
        f"{', '.join(differ)}. Delete {path} to regenerate it, or set data.path elsewhere.")


def prepare_data(config: ml_collections.ConfigDict, num_samples: int = NUM_SAMPLES,
                 log=print) -> None:
  """Writes the synthetic dataset and its text file where `config` expects them, if missing.

  Existing data are used only if their manifest records this seed, sample count and
  `GENERATION`; otherwise a DemoError says what differs.
  """
  path = config.data.path
  if os.path.exists(os.path.join(path, "train_position.npy")):
    _check_manifest(path, {"seed": config.seed, "num_samples": num_samples, **GENERATION})
    log(f"[data] using {path}")
  else:
    start = time.perf_counter()
    manifest = synthetic.write_dataset(path, num_samples=num_samples, seed=config.seed,
                                       **GENERATION)
    log(f"[data] generated {path}: {manifest['splits']['train']['num_samples']} train, "
        f"{manifest['splits']['val']['num_samples']} test samples of "
        f"{len(synthetic.CLASS_NAMES)} classes, cameras tilted by up to "
        f"{GENERATION['elevation_degrees']:g} deg (elevation) and "
        f"{GENERATION['roll_degrees']:g} deg (roll) ({time.perf_counter() - start:.0f} s)")
  if not config.text.path:
    return
  if os.path.exists(config.text.path):
    log(f"[text] using {config.text.path}")
  else:
    start = time.perf_counter()
    summary = embed.embed_synthetic(config.text.path, seed=config.seed)
    log(f"[text] embedded {summary['sentences']} class descriptions into {config.text.path} "
        f"({time.perf_counter() - start:.0f} s)")
  log("[text] NOTE: the text model is a RANDOMLY INITIALISED CLIP text model (no pretrained "
      "weights offline), so the demo's language guidance is not CLIP's; real runs embed with "
      "`python -m freqjax.text.embed --model openai/clip-vit-base-patch32`.")


def check_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Raises DemoError if `workdir` holds a pretraining run of another config.

  Pretraining would resume from its checkpoints (and fail on a queue of another size, or
  silently continue another run), so an earlier demo's workdir must be deleted first.
  """
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  with open(path, encoding="utf-8") as f:
    try:
      saved = json.load(f)
    except json.JSONDecodeError:
      saved = {}  # unreadable: every field differs
  changes = resume.compare_configs(resume.flatten(saved), resume.flatten(
      json.loads(config.to_json_best_effort())), ignore=resume.changes_no_state)
  if changes:
    raise DemoError(
        f"{workdir} holds a pretraining run of another config ({path}: "
        f"{changes.describe(limit=5)}), e.g. an earlier version of the demo. Delete "
        f"{workdir} or pass --workdir.")


def run(pretrain_config: ml_collections.ConfigDict,
        eval_configs: Sequence[ml_collections.ConfigDict], workdir: str,
        num_samples: int = NUM_SAMPLES, log=print) -> dict[str, Any]:
  """Data, pretraining, then each eval config on the pretrained and a random-init encoder.

  Returns:
    `{"pretrained": {name: result}, "random_init": {name: result}, "chance": percent,
    "seconds": {...}}`, `name` the report name of each eval config (`linear`, `knn`) and
    each result the `Evaluation` that `freqjax.evaluation.run.evaluate` returns.
  """
  seconds = {}
  start = time.perf_counter()
  prepare_data(pretrain_config, num_samples, log)
  seconds["data"] = time.perf_counter() - start

  start = time.perf_counter()
  check_workdir(pretrain_config, workdir)
  log(f"[pretrain] {workdir} (resumes from its checkpoints; Ctrl-C is safe)")
  loop.pretrain(pretrain_config, workdir)
  seconds["pretrain"] = time.perf_counter() - start

  results = {"pretrained": {}, "random_init": {}}
  start = time.perf_counter()
  for eval_config in eval_configs:
    name = evaluation.report_name(eval_config)
    for key, overrides in (("pretrained", {}),
                           ("random_init", {"init_from": evaluation.RANDOM_INIT,
                                            "name": f"{name}_random_init"})):
      config = eval_config.copy_and_resolve_references()
      config.update(overrides)
      log(f"[eval] {name} evaluation of the {key.replace('_', '-')} encoder")
      results[key][name] = evaluation.evaluate(config, workdir)
      log(results[key][name].summary)
  seconds["eval"] = time.perf_counter() - start
  return dict(results, chance=100.0 / pretrain_config.data.num_classes, seconds=seconds)


# What each protocol of the demo is, for the summary (report name: description).
NOTES = {
    "linear": "the SkeletonCLR recipe (raw features, SGD lr 3.0, last epoch); not "
              "scale-invariant",
    "linear_std": "the same probe on features standardised with the training split's mean "
                  "and std; scale-invariant",
    "knn": "weighted cosine kNN; scale-invariant",
}


def format_summary(outcome: dict[str, Any], total_seconds: float) -> str:
  """The lines the demo ends with: a table of top-1 accuracies, notes, the report paths."""
  pre, rnd = outcome["pretrained"], outcome["random_init"]
  some = next(iter(pre.values()))
  lines = ["", "=" * 78,
           f"Top-1 on {some.num_test} synthetic test samples (pretrained: checkpoint step "
           f"{some.checkpoint_step}):",
           f"  {'protocol':<12}{'pretrained':>12}{'random-init':>13}{'chance':>9}"
           f"{'pretrained - random':>22}"]
  for name, result in pre.items():
    margin = result.test_top1 - rnd[name].test_top1
    lines.append(f"  {name:<12}{result.test_top1:>10.2f} %{rnd[name].test_top1:>11.2f} %"
                 f"{outcome['chance']:>7.2f} %{margin:>+18.2f} pts")
  for name in pre:
    note = NOTES.get(name)
    if name == "knn":
      note = note.replace("kNN", f"kNN (k={pre[name].record.k})")
    if note:
      lines.append(f"  {name + ':':<12}{note}.")
  if "linear" in pre:
    norms = [r["linear"].record.train_feature_norm_mean for r in (pre, rnd)]
    lines.append(f"  {'':<12}Mean feature norm {norms[0]:.2f} (pretrained) vs {norms[1]:.2f} "
                 "(random-init).")
  reports = [r.report_dir for r in (*pre.values(), *rnd.values())]
  lines.append(f"Reports in {os.path.dirname(reports[0])}/: "
               + ", ".join(os.path.basename(r) for r in reports))
  lines.append(f"Total {total_seconds / 60:.1f} min ("
               + ", ".join(f"{k} {v:.0f} s" for k, v in outcome["seconds"].items()) + ").")
  lines.append("Text: per-class descriptions (pretraining sees the labels through them) "
               "embedded by a randomly initialised CLIP text model (no CLIP weights offline).")
  lines.append("=" * 78)
  return "\n".join(lines)


def demo_configs(eval_configs, pretrain_configs, seed: int = 0
                 ) -> tuple[ml_collections.ConfigDict, list[ml_collections.ConfigDict]]:
  """The demo's pretraining config and its eval configs (`linear`, `linear_std`, `knn`).

  `seed` seeds everything: data, text model, pretraining, probes and the random-init
  baseline; a seed other than 0 gets its own data and text files (`..._seed<N>`).
  """
  config = pretrain_configs.get_config("demo")
  config.seed = seed
  if seed:
    config.data.path = f"{config.data.path}_seed{seed}"
    root, ext = os.path.splitext(config.text.path)
    config.text.path = f"{root}_seed{seed}{ext}"
  linear = eval_configs.get_config("linear")
  standardized = eval_configs.get_config("linear")
  standardized.name = "linear_std"
  standardized.linear.standardize = True
  knn = eval_configs.get_config("knn")
  knn.knn.k = 20  # about a quarter of a class's 75 training samples
  for c in (linear, standardized, knn):
    c.seed = seed
  return config, [linear, standardized, knn]


@cli.report_errors("python -m freqjax.demo")
def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m freqjax.demo", description=__doc__.split(
      "\n", 1)[0])
  parser.add_argument("--workdir", default=None,
                      help="the pretraining run's folder (default runs/demo, or "
                      "runs/demo_seed<N> for --seed N)")
  parser.add_argument("--seed", type=int, default=0,
                      help="seeds data, text model, pretraining and evaluation (not 0: its "
                      "own data and text files)")
  cli.add_traceback_flag(parser)
  args = parser.parse_args(argv)
  workdir = args.workdir or ("runs/demo" if not args.seed else f"runs/demo_seed{args.seed}")
  logging.set_verbosity(logging.ERROR)  # Orbax's INFO/WARNING lines about read-only reads.
  # Imported here: `configs/` is a folder of the repository, not of the package.
  try:
    from configs import eval as eval_configs  # pylint: disable=g-import-not-at-top
    from configs import pretrain as pretrain_configs  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise cli.UserError("configs/ not found: run the demo from the repository root (make "
                        "demo, or python -m freqjax.demo there).") from None
  start = time.perf_counter()
  config, evals = demo_configs(eval_configs, pretrain_configs, args.seed)
  outcome = run(config, evals, workdir)
  print(format_summary(outcome, time.perf_counter() - start))
  return 0


if __name__ == "__main__":
  sys.exit(main())
