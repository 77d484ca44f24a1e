"""Evaluates a pretrained encoder.

  python eval.py --config configs/eval.py:linear --workdir runs/demo

Variants: linear, knn, semi1, semi10, finetune, transfer (see configs/eval.py). Override any
field with `--config.init_from=ckpt.pt`, `--config.data.path=data/pku2/xsub` etc. The report
goes to `workdir/eval/<protocol>/`.
"""
from freqjax import xla_env

xla_env.configure()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from freqjax.evaluation import run as evaluation  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/eval.py:linear",
                                          "Evaluation config file (and variant).")
_WORKDIR = flags.DEFINE_string("workdir", None, "The pretraining run's directory (its "
                               "checkpoints, config.json; the report goes to eval/ in it).",
                               required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every file at INFO.
  result = evaluation.evaluate(_CONFIG.value, _WORKDIR.value)
  print(result["summary"])


if __name__ == "__main__":
  app.run(main)
