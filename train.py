"""Pretrains MICA: `python train.py --config configs/pretrain.py:demo --workdir runs/demo`.

Override any field with `--config.optim.batch_size=256` etc. Restarting with the same
`--workdir` resumes from its latest checkpoint, after checking that the config is the one
the run was started with (README, "Resuming"). A mistake in the input (a flag, a config
field, a data file) prints one line and exits with status 2; `--traceback` shows where it
came from.
"""
import sys

from freqjax import xla_env

xla_env.configure()

from absl import flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from freqjax import absl_cli, cli, parallel  # noqa: E402
from freqjax.pretraining import loop  # noqa: E402

with absl_cli.config_flag_errors("train.py"):
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/pretrain.py:demo",
                                            "Pretraining config file (and variant).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and logs.",
                               required=True)
_ALLOW_CONFIG_CHANGE = flags.DEFINE_bool(
    "allow_config_change", False,
    "Resume a run whose saved config.json differs from this config in fields that change "
    "the run (the old record is kept as config.before_step_<step>.json).")


def main(argv):
  if len(argv) > 1:
    raise cli.UserError(f"unexpected arguments {argv[1:]}; fields are set with "
                        "--config.<field>=<value>")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every file at INFO.
  try:
    parallel.initialize_if_requested()
  except parallel.LauncherError as error:
    raise cli.UserError(str(error)) from None
  loop.pretrain(_CONFIG.value, _WORKDIR.value, allow_config_change=_ALLOW_CONFIG_CHANGE.value)


if __name__ == "__main__":
  sys.exit(absl_cli.run(main, "train.py"))
