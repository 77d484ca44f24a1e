"""Evaluates a pretrained encoder.

  python eval.py --config configs/eval.py:linear --workdir runs/demo

Variants: linear, knn, semi1, semi10, finetune, transfer (see configs/eval.py). Override any
field with `--config.init_from=ckpt.pt`, `--config.data.path=data/pku2/xsub` etc. The report
goes to `workdir/eval/<protocol>/`. A mistake in the input (a flag, a config field, a data
file, a checkpoint that cannot be restored) prints one line and exits with status 2;
`--traceback` shows where it came from.
"""
import sys

from freqjax import xla_env

xla_env.configure()

from absl import flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from freqjax import absl_cli, cli  # noqa: E402
from freqjax.evaluation import run as evaluation  # noqa: E402

with absl_cli.config_flag_errors("eval.py"):
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/eval.py:linear",
                                            "Evaluation config file (and variant).")
_WORKDIR = flags.DEFINE_string("workdir", None, "The pretraining run's directory (its "
                               "checkpoints, config.json; the report goes to eval/ in it).",
                               required=True)


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments {argv[1:]}; fields are set with "
                        "--config.<field>=<value>")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every file at INFO.
  result = evaluation.evaluate(_CONFIG.value, _WORKDIR.value)
  print(result.summary)


if __name__ == "__main__":
  sys.exit(absl_cli.run(main, "eval.py"))
