"""Precomputed text embeddings joined to a dataset, served per batch on the host.

Training never runs the text model (docs/method.md, "Text embeddings"):
`python -m freqjax.text.embed` writes an `.npz` (format in `freqjax/text/embed.py`),
`TextTable.load` reads it, and `dataset_extra_fn(table, dataset)` (or
`table.extra_fn(keys_of_each_row)`) gives the input pipeline's `extra_fn(indices, step)`,
which adds to each batch

  text_embedding  (B, P) float32, L2-normalised sentence embedding (P = 512 for CLIP)
  word_features   (B, L, H) as stored (float16 or float32), word-level features, zero at
                  padding (H = 512); the step converts them to float32 on the device, which
                  is exact and halves the host's work and the transfer (numpy's float16 →
                  float32 conversion was the slowest part of the host pipeline)
  word_mask       (B, L) bool, True at real tokens

A per-class file is joined by the dataset's labels, a per-sample file (C2VL) by its sample
names. With several sentences per key, `sentences` chooses:
- "random": one sentence per sample and step, drawn with `np.random.default_rng((seed,
  step))` (in `extra_fn`, one draw per dataset row, whatever the batch or host), so a
  run is reproducible, a resumed run sees the same text and so does a run on more hosts;
- "mean": the normalised mean of the key's sentence embeddings, and as word features the
  real tokens of all its sentences one after another (so the Modality Harmonizer attends
  over every description; L = the most tokens any key has in total).

Per-class text uses the labels during pretraining: report results with it as such.
"""
import dataclasses
import logging
import os
from typing import Callable, Optional, Sequence

import numpy as np

from freqjax import cli
from freqjax.normalize import l2_normalize
from freqjax.text import embed

SENTENCE_MODES = ("random", "mean")
_REQUIRED = ("format_version", "kind", "keys", "offsets", "text_embedding", "word_features",
             "word_mask", "model", "random_init", "descriptions_sha256")
_SHOWN_MISSING = 8


class TextTableError(cli.UserError, ValueError):
  """A text embedding file is unusable, or does not fit the dataset or the model."""


def _as_keys(keys: Sequence, kind: str, path: str) -> list[str]:
  """Dataset keys as the file spells them: labels as decimal strings, names as is."""
  keys = np.asarray(keys)
  if kind == "class":
    if not np.issubdtype(keys.dtype, np.integer):
      raise TextTableError(f"{path}: this file is keyed by class label; join it by the "
                           f"dataset's integer labels, not {keys.dtype} keys such as "
                           f"{keys.ravel()[:1].tolist()}")
    return [str(int(k)) for k in keys.ravel()]
  if not (np.issubdtype(keys.dtype, np.str_) or keys.dtype == object):
    raise TextTableError(f"{path}: this file is keyed by sample name; join it by the "
                         f"dataset's sample names, not {keys.dtype} keys")
  return [str(k) for k in keys.ravel()]


@dataclasses.dataclass(eq=False)
class TextTable:
  """Sentence embeddings and word features of R sentences over K keys.

  Attributes:
    path: the file read.
    kind: "class" (keys are 0-based labels as decimal strings) or "sample".
    keys: `(K,)` the keys.
    offsets: `(K + 1,)` key i owns rows `offsets[i]:offsets[i + 1]`.
    text_embedding: `(R, P)` as stored (float16 or float32).
    word_features: `(R, L, H)` as stored.
    word_mask: `(R, L)` bool.
    model: the text model that made them.
    random_init: True when that model had random weights (demo only).
    descriptions_sha256: hash of the descriptions (record it with results).
    sentences: "random" or "mean" (see the module docstring).
    seed: seeds the "random" choice, with the step.
  """
  path: str
  kind: str
  keys: np.ndarray
  offsets: np.ndarray
  text_embedding: np.ndarray
  word_features: np.ndarray
  word_mask: np.ndarray
  model: str
  random_init: bool
  descriptions_sha256: str
  sentences: str = "random"
  seed: int = 0

  def __post_init__(self):
    self._index = {key: i for i, key in enumerate(self.keys.tolist())}
    self._counts = np.diff(self.offsets)
    self._lengths = self.word_mask.sum(axis=1)
    if self.sentences == "mean":
      sums = np.add.reduceat(self.text_embedding.astype(np.float32), self.offsets[:-1])
      self._mean_embedding = l2_normalize(sums)
      self._mean_length = int(np.add.reduceat(self._lengths, self.offsets[:-1]).max())

  @classmethod
  def load(cls, path: str, expected_dim: Optional[int] = None,
           expected_word_dim: Optional[int] = None, sentences: str = "random",
           seed: int = 0) -> "TextTable":
    """Reads and checks a file written by `python -m freqjax.text.embed`.

    Args:
      path: the `.npz`.
      expected_dim: the width the model compares text with (config `fm_dim`); a
        different sentence-embedding width is an error.
      expected_word_dim: optional width the Modality Harmonizer expects of the words.
      sentences: "random" or "mean" (config `text.sentences`).
      seed: seeds the per-step choice of sentence.
    """
    if sentences not in SENTENCE_MODES:
      raise TextTableError(f"text.sentences is {sentences!r}; choose one of {SENTENCE_MODES}")
    if not os.path.isfile(path):
      raise FileNotFoundError(f"{path}: text embedding file not found; make it with "
                              "`python -m freqjax.text.embed --descriptions F --out "
                              f"{path}` (or `--synthetic` for the demo)")
    try:
      with np.load(path, allow_pickle=False) as f:
        content = {name: f[name] for name in f.files}
    except (ValueError, OSError) as e:
      raise TextTableError(f"{path}: not a readable .npz file ({e})") from None
    missing = [name for name in _REQUIRED if name not in content]
    if missing:
      raise TextTableError(f"{path}: fields {missing} are missing; not a freqjax text file "
                           "(write it with `python -m freqjax.text.embed`)")
    if int(content["format_version"]) != embed.FORMAT_VERSION:
      raise TextTableError(f"{path}: format_version {int(content['format_version'])}, this "
                           f"code reads {embed.FORMAT_VERSION}; re-embed the descriptions")
    _check_consistent(path, content)
    _check_finite(path, content)
    table = cls(path=path, kind=str(content["kind"]), keys=content["keys"],
                offsets=content["offsets"].astype(np.int64),
                text_embedding=content["text_embedding"],
                word_features=content["word_features"], word_mask=content["word_mask"],
                model=str(content["model"]), random_init=bool(content["random_init"]),
                descriptions_sha256=str(content["descriptions_sha256"]),
                sentences=sentences, seed=seed)
    if expected_dim is not None and table.dim != expected_dim:
      raise TextTableError(f"{path}: sentence embeddings are {table.dim}-d but the model "
                           f"expects {expected_dim}-d (config fm_dim); re-embed with the "
                           "matching text model or change the config")
    if expected_word_dim is not None and table.word_dim != expected_word_dim:
      raise TextTableError(f"{path}: word features are {table.word_dim}-d but the model "
                           f"expects {expected_word_dim}-d")
    if table.random_init:
      logging.warning("%s: %s", path, embed.random_init_warning(table.model))
    return table

  @property
  def dim(self) -> int:
    """P, the sentence embedding width."""
    return self.text_embedding.shape[1]

  @property
  def word_dim(self) -> int:
    """H, the word feature width."""
    return self.word_features.shape[2]

  @property
  def num_words(self) -> int:
    """L of `word_features` in a batch (depends on `sentences`)."""
    return self._mean_length if self.sentences == "mean" else self.word_features.shape[1]

  def key_indices(self, keys: Sequence) -> np.ndarray:
    """Positions in `self.keys` of dataset keys (labels or sample names), `(len(keys),)`.

    Raises:
      TextTableError: some keys are not in the file; lists the first few.
    """
    keys = _as_keys(keys, self.kind, self.path)
    index = [self._index.get(key, -1) for key in keys]
    missing = [key for key, i in zip(keys, index) if i < 0]
    if missing:
      missing = list(dict.fromkeys(missing))
      raise TextTableError(
          f"{self.path}: {len(missing)} {self.kind} key(s) of the dataset have no text, "
          f"e.g. {missing[:_SHOWN_MISSING]}; the file has {len(self.keys)} keys such as "
          f"{self.keys[:3].tolist()}. Embed descriptions for them (python -m "
          "freqjax.text.embed) or use the file made for this dataset.")
    return np.asarray(index, np.int64)

  def lookup(self, keys: Sequence, step: int) -> dict[str, np.ndarray]:
    """Text of a batch given its keys (labels or sample names), at training step `step`."""
    return self.gather(self.key_indices(keys), step)

  def gather(self, key_index: np.ndarray, step: int) -> dict[str, np.ndarray]:
    """Text of a batch given positions in `self.keys`, `(B,)` int.

    Returns:
      `text_embedding` `(B, P)` float32 L2-normalised, `word_features` `(B, L, H)`
      in the stored dtype, zero at padding, `word_mask` `(B, L)` bool.
    """
    key_index = np.asarray(key_index, np.int64)
    if self.sentences == "mean":
      return self._gather_mean(key_index)
    rng = np.random.default_rng((self.seed, int(step)))
    return self._gather_drawn(key_index, rng.random(key_index.shape))

  def _gather_drawn(self, key_index: np.ndarray, uniforms: np.ndarray) -> dict[str, np.ndarray]:
    """"random" mode: sentence `floor(u * count)` of each key, `uniforms` in [0, 1)."""
    pick = np.floor(uniforms * self._counts[key_index]).astype(np.int64)
    rows = self.offsets[key_index] + pick
    return {
        "text_embedding": l2_normalize(self.text_embedding[rows].astype(np.float32)),
        "word_features": self.word_features[rows],
        "word_mask": self.word_mask[rows],
    }

  def _gather_mean(self, key_index: np.ndarray) -> dict[str, np.ndarray]:
    words = np.zeros(key_index.shape + (self._mean_length, self.word_dim),
                     self.word_features.dtype)
    mask = np.zeros(key_index.shape + (self._mean_length,), bool)
    for b, k in enumerate(key_index):
      rows = slice(self.offsets[k], self.offsets[k + 1])
      tokens = self.word_features[rows][self.word_mask[rows]]
      words[b, :len(tokens)] = tokens
      mask[b, :len(tokens)] = True
    return {"text_embedding": self._mean_embedding[key_index], "word_features": words,
            "word_mask": mask}

  def extra_fn(self, dataset_keys: Sequence) -> Callable[[np.ndarray, int], dict]:
    """The input pipeline's `extra_fn(indices, step)` for a dataset.

    Args:
      dataset_keys: for each dataset row, its label (per-class file) or sample name
        (per-sample file). All are checked against the file now, not at the first batch.

    Returns:
      `extra_fn(indices, step)`: dataset row indices `(B,)` → `gather` of their keys. A
      "random" sentence is drawn per dataset row (one uniform per row and step), so a
      sample's text does not depend on which host's slice of the global batch holds it.
    """
    key_index = self.key_indices(dataset_keys)

    def extra_fn(indices: np.ndarray, step: int) -> dict[str, np.ndarray]:
      indices = np.asarray(indices)
      if self.sentences == "mean":
        return self._gather_mean(key_index[indices])
      uniforms = np.random.default_rng((self.seed, int(step))).random(len(key_index))
      return self._gather_drawn(key_index[indices], uniforms[indices])

    return extra_fn


def dataset_extra_fn(table: TextTable, dataset) -> Callable[[np.ndarray, int], dict]:
  """`table.extra_fn` keyed by `dataset.labels` (per-class file) or `dataset.sample_names`
  (per-sample file), for `freqjax.data.pipeline.train_batches(..., extra_fn=...)`."""
  if table.kind == "class":
    return table.extra_fn(np.asarray(dataset.labels))
  if not hasattr(dataset, "sample_names"):
    raise TextTableError(f"{table.path}: this file is keyed by sample name but the dataset "
                         "has no sample_names; use a per-class text file")
  return table.extra_fn(list(dataset.sample_names))


def _check_consistent(path: str, content: dict) -> None:
  """Raises TextTableError, naming the field, unless the arrays agree with each other."""
  kind, keys, offsets = str(content["kind"]), content["keys"], content["offsets"]
  rows = content["text_embedding"].shape[0]
  problems = []
  if kind not in ("class", "sample"):
    problems.append(f"kind is {kind!r}, not 'class' or 'sample'")
  if keys.ndim != 1 or offsets.shape != (len(keys) + 1,):
    problems.append(f"offsets {offsets.shape} do not fit keys {keys.shape}")
  elif offsets[0] != 0 or offsets[-1] != rows or np.any(np.diff(offsets) < 1):
    problems.append("offsets must rise from 0 to the number of rows, at least 1 row per key")
  if content["text_embedding"].ndim != 2:
    problems.append(f"text_embedding is {content['text_embedding'].shape}, want (R, P)")
  if content["word_features"].ndim != 3 or content["word_features"].shape[0] != rows:
    problems.append(f"word_features is {content['word_features'].shape}, want (R={rows}, L, H)")
  elif content["word_mask"].shape != content["word_features"].shape[:2]:
    problems.append(f"word_mask is {content['word_mask'].shape}, want "
                    f"{content['word_features'].shape[:2]}")
  if problems:
    raise TextTableError(f"{path}: inconsistent text file: {'; '.join(problems)}; re-embed it")


def _check_finite(path: str, content: dict, rows_per_chunk: int = 4096) -> None:
  """Raises TextTableError naming the first row (and its key) with a NaN or infinite value.

  Checked in chunks of rows: a per-sample file's word features can be gigabytes.
  """
  for field in ("text_embedding", "word_features"):
    values = content[field]
    for start in range(0, len(values), rows_per_chunk):
      finite = np.isfinite(values[start:start + rows_per_chunk]).reshape(
          min(rows_per_chunk, len(values) - start), -1).all(axis=1)
      if not finite.all():
        row = start + int(np.argmin(finite))
        key = content["keys"][np.searchsorted(content["offsets"], row, side="right") - 1]
        raise TextTableError(f"{path}: {field} row {row} (key {key}) holds NaN or infinite "
                             "values; re-embed the descriptions (python -m freqjax.text.embed)")
