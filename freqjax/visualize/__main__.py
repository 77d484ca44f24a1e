"""`python -m freqjax.visualize {skeleton,curves} ...`: pictures of data and training.

  # One sample as an animated skeleton, beside its normal and extreme augmented views:
  python -m freqjax.visualize skeleton --data-format aimclr --data-path data/ntu60/xsub \
      --split train --index 3 --out sample.gif --views [--projection 2d] \
      [--augment shear_amplitude=0.3 --augment blur_normalize=True]
  # A run's training curves -> RUN/training_curves.png:
  python -m freqjax.visualize curves --workdir runs/ntu60_xsub_joint
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

  args = parser.parse_args(argv)
  if args.command == "skeleton":
    xla_env.configure()  # before jax is first imported, by the skeleton module
    # pylint: disable-next=g-import-not-at-top
    from freqjax.visualize import skeleton as skeleton_pictures
    print(skeleton_pictures.animate_sample(
        args.data_format, args.data_path, args.split, args.index, args.out,
        views=args.views, projection=args.projection, num_frames=args.num_frames,
        seed=args.seed, augment_kwargs=dict(args.augment)))
  else:
    metrics_path = os.path.join(args.workdir, "metrics.jsonl")
    print(curve_pictures.plot_training_curves(metrics_path, args.out))
  return 0


if __name__ == "__main__":
  sys.exit(main())
