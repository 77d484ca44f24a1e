"""The synthetic demo, end to end on a CPU: `python -m freqjax.demo --workdir runs/demo`.

1. Generates the synthetic dataset (`data/synthetic/xperformer`) unless it exists.
2. Embeds its class descriptions (`data/synthetic/text.npz`) unless the file exists, with
   a RANDOMLY INITIALISED CLIP text model: no weights can be downloaded here, so the
   language guidance of the demo is not CLIP's (real runs embed with CLIP).
3. Pretrains `configs/pretrain.py:demo` in the workdir (resuming from its checkpoints).
4. Linear evaluation (the SkeletonCLR recipe) and cosine kNN of the pretrained encoder
   and of a randomly initialised encoder of the same config (the baseline pretraining has
   to beat), and prints the accuracies with chance and the reports' paths. kNN is there
   because the recipe's probe is not scale-invariant: it favours the encoder whose
   features are larger, whatever their quality.

`make demo` runs it. Run from the repository root (it reads `configs/`).
"""
import argparse
from collections.abc import Sequence
import os
import sys
import time
from typing import Any

from freqjax import xla_env

xla_env.configure()

# pylint: disable=g-import-not-at-top,wrong-import-position
from absl import logging  # noqa: E402
import ml_collections  # noqa: E402

from freqjax import evaluate, pretrain  # noqa: E402
from freqjax.data import synthetic  # noqa: E402
from freqjax.text import embed  # noqa: E402
# pylint: enable=g-import-not-at-top,wrong-import-position

# The generated dataset: 2100 samples, 20 performers, half of them for training.
NUM_SAMPLES = 2100
GENERATED_FRAMES = 50


def prepare_data(config: ml_collections.ConfigDict, num_samples: int = NUM_SAMPLES,
                 log=print) -> None:
  """Writes the synthetic dataset and its text file where `config` expects them, if missing."""
  path = config.data.path
  if os.path.exists(os.path.join(path, "train_position.npy")):
    log(f"[data] using {path}")
  else:
    start = time.perf_counter()
    manifest = synthetic.write_dataset(path, num_samples=num_samples, seed=config.seed,
                                       num_frames=GENERATED_FRAMES)
    log(f"[data] generated {path}: {manifest['splits']['train']['num_samples']} train, "
        f"{manifest['splits']['val']['num_samples']} test samples of "
        f"{len(synthetic.CLASS_NAMES)} classes ({time.perf_counter() - start:.0f} s)")
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


def run(pretrain_config: ml_collections.ConfigDict,
        eval_configs: Sequence[ml_collections.ConfigDict], workdir: str,
        num_samples: int = NUM_SAMPLES, log=print) -> dict[str, Any]:
  """Data, pretraining, then each eval config on the pretrained and a random-init encoder.

  Returns:
    `{"pretrained": {name: result}, "random_init": {name: result}, "chance": percent,
    "seconds": {...}}`, `name` the report name of each eval config (`linear`, `knn`) and
    each result as `freqjax.evaluate.evaluate` returns it.
  """
  seconds = {}
  start = time.perf_counter()
  prepare_data(pretrain_config, num_samples, log)
  seconds["data"] = time.perf_counter() - start

  start = time.perf_counter()
  log(f"[pretrain] {workdir} (resumes from its checkpoints; Ctrl-C is safe)")
  pretrain.train_and_evaluate(pretrain_config, workdir)
  seconds["pretrain"] = time.perf_counter() - start

  results = {"pretrained": {}, "random_init": {}}
  start = time.perf_counter()
  for eval_config in eval_configs:
    name = evaluate.report_name(eval_config)
    for key, overrides in (("pretrained", {}),
                           ("random_init", {"init_from": evaluate.RANDOM_INIT,
                                            "name": f"{name}_random_init"})):
      config = eval_config.copy_and_resolve_references()
      config.update(overrides)
      log(f"[eval] {name} evaluation of the {key.replace('_', '-')} encoder")
      results[key][name] = evaluate.evaluate(config, workdir)
      log(results[key][name]["summary"])
  seconds["eval"] = time.perf_counter() - start
  return dict(results, chance=100.0 / pretrain_config.data.num_classes, seconds=seconds)


def format_summary(outcome: dict[str, Any], total_seconds: float) -> str:
  """The lines the demo ends with: a table of top-1 accuracies, notes, the report paths."""
  pre, rnd = outcome["pretrained"], outcome["random_init"]
  some = next(iter(pre.values()))
  lines = ["", "=" * 78,
           f"Top-1 on {some['num_test']} synthetic test samples (pretrained: checkpoint step "
           f"{some['checkpoint_step']}):",
           f"  {'protocol':<10}{'pretrained':>12}{'random-init':>13}{'chance':>9}"
           f"{'pretrained - random':>22}"]
  for name, result in pre.items():
    margin = result["test_top1"] - rnd[name]["test_top1"]
    lines.append(f"  {name:<10}{result['test_top1']:>10.2f} %{rnd[name]['test_top1']:>11.2f} %"
                 f"{outcome['chance']:>7.2f} %{margin:>+18.2f} pts")
  if "linear" in pre:
    norms = [r["linear"]["extra"].get("train_feature_norm_mean") for r in (pre, rnd)]
    if None not in norms:
      lines += ["  linear: the SkeletonCLR recipe (raw features, SGD lr 3.0, last epoch); not "
                "scale-invariant:",
                f"          mean feature norm {norms[0]:.2f} (pretrained) vs {norms[1]:.2f} "
                "(random-init)."]
  if "knn" in pre:
    lines.append(f"  knn:    weighted cosine kNN (k={pre['knn']['extra'].get('k')}), "
                 "scale-invariant.")
  reports = [r["report_dir"] for r in (*pre.values(), *rnd.values())]
  lines.append(f"Reports in {os.path.dirname(reports[0])}/: "
               + ", ".join(os.path.basename(r) for r in reports))
  lines.append(f"Total {total_seconds / 60:.1f} min ("
               + ", ".join(f"{k} {v:.0f} s" for k, v in outcome["seconds"].items()) + ").")
  lines.append("Text embeddings: a randomly initialised CLIP text model (no CLIP weights "
               "offline).")
  lines.append("=" * 78)
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m freqjax.demo", description=__doc__.split(
      "\n", 1)[0])
  parser.add_argument("--workdir", default="runs/demo", help="the pretraining run's folder")
  args = parser.parse_args(argv)
  logging.set_verbosity(logging.ERROR)  # Orbax's INFO/WARNING lines about read-only reads.
  # Imported here: `configs/` is a folder of the repository, not of the package.
  try:
    from configs import eval as eval_configs  # pylint: disable=g-import-not-at-top
    from configs import pretrain as pretrain_configs  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("error: configs/ not found: run the demo from the repository root "
          "(make demo, or python -m freqjax.demo there).", file=sys.stderr)
    return 2
  start = time.perf_counter()
  knn = eval_configs.get_config("knn")
  knn.knn.k = 20  # about a quarter of a class's 75 training samples
  outcome = run(pretrain_configs.get_config("demo"), [eval_configs.get_config("linear"), knn],
                args.workdir)
  print(format_summary(outcome, time.perf_counter() - start))
  return 0


if __name__ == "__main__":
  sys.exit(main())
