"""Pretrains MICA: `python train.py --config configs/pretrain.py:demo --workdir runs/demo`.

Override any field with `--config.optim.batch_size=256` etc. Restarting with the same
`--workdir` resumes from its latest checkpoint.
"""
from freqjax import xla_env

xla_env.configure()

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from freqjax import parallel  # noqa: E402
from freqjax.pretraining import loop  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/pretrain.py:demo",
                                          "Pretraining config file (and variant).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints and logs.",
                               required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:
    logging.set_verbosity(logging.WARNING)  # Orbax logs every file at INFO.
  parallel.initialize_if_requested()
  loop.pretrain(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
