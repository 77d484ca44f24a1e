r"""Embeds action descriptions with the frozen CLIP text model into one `.npz` file.

  python -m freqjax.text.embed --descriptions ntu120_descriptions.json --out ntu120_text.npz
  python -m freqjax.text.embed --classes ntu60 --out ntu60_prompts.npz       # class names
  python -m freqjax.text.embed --synthetic --out synthetic_text.npz          # offline demo

Options: `--model` (a Hugging Face id found in the local cache, or a folder; default
`openai/clip-vit-base-patch32`), `--dtype float16|float32` (storage), `--batch-size`.
`--synthetic` embeds the synthetic dataset's descriptions with a *randomly initialised*
CLIP text model unless `--model` is given; `--random-init` does the same for any
descriptions. Such files say so (`model`, `random_init`) and every reader warns.

The file (`np.load(path)`, no pickle), R sentences over K keys:
  format_version       () int, 1
  kind                 () str, "class" (keys are 0-based labels) or "sample" (sample names)
  keys                 (K,) str
  offsets              (K + 1,) int64: key i owns rows offsets[i]:offsets[i + 1]
  sentences            (R,) str
  text_embedding       (R, P) float16/32, L2-normalised projected EOT features (P = 512)
  word_features        (R, L, H) float16/32, last hidden states, zero at padding (H = 512)
  word_mask            (R, L) bool, True at real tokens; L = longest sentence (≤ 77)
  model                () str, the model id/folder, or "random-init-clip-text(seed=S)"
  random_init          () bool
  descriptions_sha256  () str, `Descriptions.sha256()` of the text embedded
  descriptions_source  () str
"""
import argparse
import errno
import os
import sys
from typing import Optional, Sequence

import numpy as np

from freqjax import cli
from freqjax import xla_env
from freqjax.text import classes
from freqjax.text import descriptions as descriptions_lib

FORMAT_VERSION = 1
DTYPES = {"float16": np.float16, "float32": np.float32}


def random_init_warning(model: str) -> str:
  """The notice every user of a random-init text file sees."""
  return (f"text embeddings from a RANDOMLY INITIALISED CLIP text model ({model}), "
          "not from CLIP: fine for a demo or a smoke test, meaningless as language guidance. "
          "Real runs embed with `--model openai/clip-vit-base-patch32`.")


def embed_descriptions(descriptions: descriptions_lib.Descriptions, encoder, out_path: str,
                       dtype: str = "float16", batch_size: int = 256,
                       progress: bool = False) -> dict:
  """Encodes all sentences of `descriptions` and writes the `.npz` described above.

  Args:
    descriptions: per-class or per-sample sentences.
    encoder: a `freqjax.text.clip.TextEncoder`.
    out_path: the `.npz` to write (replaced atomically).
    dtype: storage dtype of the features, "float16" or "float32".
    batch_size: sentences per model call.
    progress: show a progress bar.

  Returns:
    A summary: numbers of keys and sentences, shapes, model name.
  """
  if dtype not in DTYPES:
    raise ValueError(f"dtype {dtype!r}: choose one of {sorted(DTYPES)}")
  check_out_path(out_path)
  sentences, offsets = descriptions.flat()
  text_embedding, word_features, word_mask = encoder.encode(sentences, batch_size,
                                                            DTYPES[dtype], progress)
  arrays = dict(
      format_version=np.asarray(FORMAT_VERSION),
      kind=np.asarray(descriptions.kind),
      keys=np.asarray(descriptions.keys, dtype=str),
      offsets=np.asarray(offsets, np.int64),
      sentences=np.asarray(sentences, dtype=str),
      text_embedding=text_embedding,
      word_features=word_features,
      word_mask=word_mask,
      model=np.asarray(encoder.name),
      random_init=np.asarray(encoder.random_init),
      descriptions_sha256=np.asarray(descriptions.sha256()),
      descriptions_source=np.asarray(descriptions.source),
  )
  out_dir = os.path.dirname(os.path.abspath(out_path))
  os.makedirs(out_dir, exist_ok=True)
  tmp_path = os.path.join(out_dir, f".{os.path.basename(out_path)}.tmp.npz")
  try:
    np.savez_compressed(tmp_path, **arrays)
    os.replace(tmp_path, out_path)
  except BaseException:
    if os.path.exists(tmp_path):
      os.remove(tmp_path)
    raise
  return dict(keys=len(descriptions.keys), sentences=len(sentences),
              text_embedding=text_embedding.shape, word_features=word_features.shape,
              dtype=dtype, model=encoder.name, random_init=encoder.random_init)


def check_out_path(out_path: str) -> None:
  """Raises IsADirectoryError if `out_path`, the `.npz` to write, is a directory."""
  if os.path.isdir(out_path):
    raise IsADirectoryError(errno.EISDIR, "a directory; --out is the .npz file to write",
                            out_path)


def embed_synthetic(out_path: str, seed: int = 0, dtype: str = "float16") -> dict:
  """The demo's text file: synthetic-class descriptions, random-init CLIP text model."""
  from freqjax.text import clip  # pylint: disable=g-import-not-at-top
  descriptions = descriptions_lib.synthetic_descriptions()
  encoder = clip.random_text_encoder(descriptions.flat()[0], seed=seed)
  return embed_descriptions(descriptions, encoder, out_path, dtype)


def _parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
      prog="python -m freqjax.text.embed",
      description="Embed action descriptions with CLIP's text model into an .npz file.")
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--descriptions", help="per-class ({\"classes\": ...}) or per-sample "
                      "(C2VL {sample_name: [sentences]}) JSON file")
  source.add_argument("--classes", choices=sorted(classes.CLASS_TABLES),
                      help="a built-in dataset's class names under the prompt templates")
  source.add_argument("--synthetic", action="store_true",
                      help="the synthetic dataset's descriptions (random-init model unless "
                      "--model is given)")
  parser.add_argument("--out", required=True, help="the .npz file to write")
  parser.add_argument("--model", default=None,
                      help="Hugging Face id (local cache only) or folder; default "
                      "openai/clip-vit-base-patch32")
  parser.add_argument("--random-init", action="store_true",
                      help="use a randomly initialised CLIP text model (demo/smoke tests)")
  parser.add_argument("--seed", type=int, default=0, help="seed of the random-init model")
  parser.add_argument("--dtype", choices=sorted(DTYPES), default="float16",
                      help="storage dtype of the features")
  parser.add_argument("--batch-size", type=int, default=256)
  cli.add_traceback_flag(parser)
  args = parser.parse_args(argv)
  if args.random_init and args.model is not None:
    parser.error("--random-init and --model exclude each other")
  if args.batch_size < 1:
    parser.error("--batch-size must be positive")
  return args


@cli.report_errors("python -m freqjax.text.embed")
def main(argv: Optional[Sequence[str]] = None) -> int:
  """The CLI; returns the exit status (input errors are one line on stderr, status 2)."""
  args = _parse(argv)
  check_out_path(args.out)
  if args.descriptions is not None:
    descriptions = descriptions_lib.load_descriptions(args.descriptions)
  elif args.classes is not None:
    descriptions = descriptions_lib.prompt_descriptions(args.classes)
  else:
    descriptions = descriptions_lib.synthetic_descriptions()
  xla_env.configure()
  # Imported after configure(): it starts jax.
  from freqjax.text import clip  # pylint: disable=g-import-not-at-top
  if args.random_init or (args.synthetic and args.model is None):
    encoder = clip.random_text_encoder(descriptions.flat()[0], seed=args.seed)
    print(f"WARNING: {random_init_warning(encoder.name)}", file=sys.stderr)
  else:
    encoder = clip.load_text_encoder(args.model or clip.DEFAULT_MODEL)
  summary = embed_descriptions(descriptions, encoder, args.out, args.dtype, args.batch_size,
                               progress=True)
  print(f"wrote {args.out}: {summary['keys']} {descriptions.kind} keys, "
        f"{summary['sentences']} sentences, text_embedding {summary['text_embedding']}, "
        f"word_features {summary['word_features']} {args.dtype}, model {encoder.name}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
