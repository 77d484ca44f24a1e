"""`python -m freqjax.visualize {skeleton,curves,frest} ...`: pictures of data and training.

  # One sample as an animated skeleton, beside its normal and extreme augmented views:
  python -m freqjax.visualize skeleton --data-format aimclr --data-path data/ntu60/xsub \
      --split train --index 3 --out sample.gif --views [--projection 2d] \
      [--augment shear_amplitude=0.3 --augment blur_normalize=True]
  # A run's training curves -> RUN/training_curves.png:
  python -m freqjax.visualize curves --workdir runs/ntu60_xsub_joint
  # What a run's FreST blocks learned -> RUN/frest.png (the latest checkpoint, pass rates
  # on the run's first 64 training samples):
  python -m freqjax.visualize frest --workdir runs/ntu60_xsub_joint [--step 4000] [--batch 64]

This is a program, above the picture modules: `frest` reads checkpoints
(`freqjax.checkpoints`), which the picture modules do not import. It imports nothing of
training or of the evaluation driver either.
"""
import argparse
import ast
from collections.abc import Sequence
import os
import sys

from freqjax import cli, xla_env
from freqjax.data import readers
from freqjax.visualize import curves as curve_pictures

PROG = "python -m freqjax.visualize"
FREST_PICTURE = "frest.png"


def parse_setting(text: str) -> tuple[str, object]:
  """`NAME=VALUE` → `(NAME, VALUE)`, VALUE a Python literal (`0.3`, `True`, `(0.1, 2.0)`)."""
  name, sep, value = text.partition("=")
  if not sep or not name.strip():
    raise argparse.ArgumentTypeError(f"--augment {text!r}: expected NAME=VALUE, e.g. "
                                     "shear_amplitude=0.3")
  try:
    return name.strip(), ast.literal_eval(value.strip())
  except (ValueError, SyntaxError):
    raise argparse.ArgumentTypeError(
        f"--augment {text!r}: {value!r} is not a number, bool or tuple") from None


def _num_frames(text: str) -> int | None:
  value = int(text)
  if value < 0:
    raise argparse.ArgumentTypeError(f"--num-frames must be >= 0, got {value}")
  return value or None


def _positive(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
  return value


def draw_frest(workdir: str, out_path: str | None = None, step: int | None = None,
               num_samples: int = 64) -> str:
  """The FreST picture (`freqjax.visualize.frest`) of a pretraining run's encoder.

  The encoder is the run's `model` config with the weights of its checkpoint `step`.
  The pass rates are counted on the first `num_samples` samples the run trained on (its
  first epoch's order, as `freqjax.data.pipeline.train_batches` feeds them), without
  augmentation, in the run's `data.stream`: the input the encoder learned from.

  Args:
    workdir: the run (`config.json`, `checkpoints/`).
    out_path: the PNG to write (default `workdir/frest.png`).
    step: the checkpoint to draw (default: the latest).
    num_samples: samples the pass rates are counted on (at most the training split).

  Returns:
    The PNG's path.

  Raises:
    freqjax.checkpoints.store.RunConfigError: no workdir, no or a broken `config.json`.
    FileNotFoundError, freqjax.checkpoints.store.CheckpointError: no checkpoint (of
      `step`), or none that restores.
    freqjax.visualize.frest.NoFrestError: the run has no FreST block.
  """
  # Lazily, after `xla_env.configure()`: JAX and Orbax only for this command.
  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp
  from freqjax.checkpoints import store as checkpoint
  from freqjax.data import pipeline, streams
  from freqjax.models import STGCN
  from freqjax.visualize import frest as frest_pictures
  # pylint: enable=g-import-not-at-top

  config, config_path = checkpoint.read_run_config(workdir)
  try:
    model, data, seed = config["model"], config["data"], config["seed"]
    encoder = STGCN.from_config(model)
    data_format, data_path, split = data["format"], data["path"], data["split"]
    num_frames, num_classes, stream = data["num_frames"], data["num_classes"], data["stream"]
  except KeyError as e:
    raise checkpoint.RunConfigError(
        f"{config_path}: no field {e}; is it a config.json written by train.py?") from None
  except ValueError as e:  # model.init, model.kernels, model.compute_dtype
    raise checkpoint.RunConfigError(f"{config_path}: {e}") from None
  if not encoder.frest_blocks:
    raise frest_pictures.NoFrestError(
        f"{workdir}: the run has no FreST blocks (model.frest_blocks=() in {config_path}), "
        "so there are no filters to draw.")
  variables, step, where = checkpoint.load_encoder_variables(workdir, encoder, step)
  dataset = readers.load_dataset(data_format, data_path, split, num_frames=num_frames,
                                 num_classes=num_classes)
  rows = pipeline.epoch_permutation(len(dataset), seed, 0)[:num_samples]
  x = streams.to_stream(jnp.asarray(dataset.read(rows)), stream)
  rates = frest_pictures.frest_pass_rates(encoder, variables, x)
  title = (f"{where}; pass rates on its first {len(rows)} training samples "
           f"({split} split, {stream} stream)")
  out_path = out_path or os.path.join(workdir, FREST_PICTURE)
  return frest_pictures.plot_frest(variables["params"], out_path, rates, title=title)


@cli.report_errors(PROG)
def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  commands = parser.add_subparsers(dest="command", required=True)

  skeleton = commands.add_parser("skeleton", help="one sample as an animated GIF")
  skeleton.add_argument("--data-format", choices=readers.FORMATS, default="aimclr",
                        help="as data.format")
  skeleton.add_argument("--data-path", required=True, help="as data.path")
  skeleton.add_argument("--split", default="train", help="as data.split")
  skeleton.add_argument("--index", type=int, default=0, help="the sample's row in the split")
  skeleton.add_argument("--out", required=True, help="the .gif to write")
  skeleton.add_argument("--views", action="store_true",
                        help="also draw the normal and extreme augmented views")
  skeleton.add_argument("--projection", choices=("3d", "2d"), default="3d")
  skeleton.add_argument("--num-frames", type=_num_frames, default=50,
                        help="resample to T frames as data.num_frames (0: as stored); "
                        "GIFs keep at most 64, evenly spaced")
  skeleton.add_argument("--seed", type=int, default=0, help="the augmentation key's seed")
  skeleton.add_argument("--augment", type=parse_setting, action="append", default=[],
                        metavar="NAME=VALUE",
                        help="an argument of freqjax.data.augment.normal_view/extreme_view "
                        "(repeat for more); unset ones keep augment's defaults")
  cli.add_traceback_flag(skeleton)

  curves = commands.add_parser("curves", help="a run's training curves as a PNG")
  curves.add_argument("--workdir", required=True, help="the run (holds metrics.jsonl)")
  curves.add_argument("--out", default=None,
                      help="the PNG (default WORKDIR/training_curves.png)")
  cli.add_traceback_flag(curves)

  frest = commands.add_parser("frest", help="what a run's FreST blocks learned, as a PNG")
  frest.add_argument("--workdir", required=True,
                     help="the pretraining run (holds config.json and checkpoints/)")
  frest.add_argument("--out", default=None, help=f"the PNG (default WORKDIR/{FREST_PICTURE})")
  frest.add_argument("--step", type=int, default=None,
                     help="the checkpoint's step (default: the latest)")
  frest.add_argument("--batch", type=_positive, default=64, metavar="K",
                     help="count the pass rates on the run's first K training samples")
  cli.add_traceback_flag(frest)

  args = parser.parse_args(argv)
  if args.command == "skeleton":
    xla_env.configure()  # before jax is first imported, by the skeleton module
    # pylint: disable-next=g-import-not-at-top
    from freqjax.visualize import skeleton as skeleton_pictures
    print(skeleton_pictures.animate_sample(
        args.data_format, args.data_path, args.split, args.index, args.out,
        views=args.views, projection=args.projection, num_frames=args.num_frames,
        seed=args.seed, augment_kwargs=dict(args.augment)))
  elif args.command == "frest":
    xla_env.configure()  # before jax is first imported
    print(draw_frest(args.workdir, args.out, args.step, args.batch))
  else:
    metrics_path = os.path.join(args.workdir, "metrics.jsonl")
    print(curve_pictures.plot_training_curves(metrics_path, args.out))
  return 0


if __name__ == "__main__":
  sys.exit(main())
