"""The frozen CLIP text encoder (transformers' Flax CLIP), loaded offline, run batched.

For each sentence it gives (docs/method.md, "Text embeddings"):
- the sentence embedding: the projected feature of the end-of-text token, L2-normalised —
  exactly `FlaxCLIPModel.get_text_features(...)` divided by its norm (512-d for
  `openai/clip-vit-base-patch32`);
- the word features: the last hidden states (after the final LayerNorm; 512 wide for
  ViT-B/32) with the attention mask, padded only to the longest sentence of the call
  (at most 77 tokens), padding positions set to zero.

Nothing is downloaded: a model is a local directory or an entry of the Hugging Face cache
(`local_files_only=True`). A CLIPModel checkpoint (as published by OpenAI) or a
CLIPTextModelWithProjection one both load; Flax weights (`flax_model.msgpack`) are
preferred, PyTorch weights (`model.safetensors`, `pytorch_model.bin`) are converted by
transformers (`from_pt=True`, needs torch). When no real weights can be had, the demo uses
`random_text_encoder`: a small CLIP text model with seeded random weights, which is marked
as such (`random_init`) everywhere its output goes.
"""
import dataclasses
import functools
import logging
import os
from typing import Callable, Optional, Sequence

from flax import traverse_util
import huggingface_hub
from huggingface_hub import errors as hub_errors
import jax
import jax.numpy as jnp
import numpy as np
import tqdm
import transformers

from freqjax.text import tokenizer as offline_tokenizer

DEFAULT_MODEL = "openai/clip-vit-base-patch32"
MAX_LENGTH = 77  # CLIP's context length, special tokens included

_FLAX_WEIGHTS = "flax_model.msgpack"
_PT_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER_FILES = ("vocab.json", "merges.txt")


class TextModelNotFoundError(FileNotFoundError):
  """The text model is neither a usable local directory nor in the Hugging Face cache."""


def _how_to_get(name: str) -> str:
  return (
      f"This machine does not download models. To get {name!r}:\n"
      f"  1. on a machine with network: `huggingface-cli download {name}` (or `hf download "
      f"{name}`);\n"
      f"  2. copy that machine's Hugging Face cache (~/.cache/huggingface/hub) into this "
      f"one's ({huggingface_hub.constants.HF_HUB_CACHE}; HF_HOME or HF_HUB_CACHE move it), "
      "or copy the snapshot folder anywhere and pass `--model /path/to/folder`.\n"
      f"The folder needs config.json, vocab.json, merges.txt and {_FLAX_WEIGHTS} (or "
      f"PyTorch weights {' / '.join(_PT_WEIGHTS)}, converted with from_pt=True, needs torch).\n"
      "Without real weights, `python -m freqjax.text.embed --synthetic --out F.npz` embeds "
      "the demo descriptions with a randomly initialised model.")


def resolve_model_dir(name_or_path: str) -> str:
  """The local folder holding a model: the path itself, or its Hugging Face cache snapshot.

  Raises:
    TextModelNotFoundError: neither exists here; the message says how to get the model.
  """
  if os.path.isdir(name_or_path):
    return name_or_path
  try:
    return huggingface_hub.snapshot_download(repo_id=name_or_path, local_files_only=True)
  except (hub_errors.LocalEntryNotFoundError, hub_errors.HFValidationError):
    # Not cached, or not even a valid repo id (a mistyped path): the same advice applies.
    raise TextModelNotFoundError(
        f"text model {name_or_path!r} not found: it is not a directory and not in the Hugging "
        f"Face cache.\n{_how_to_get(name_or_path)}") from None


@dataclasses.dataclass
class TextEncoder:
  """A CLIP text model with projection, its tokenizer, and where they came from.

  Attributes:
    model: the Flax model (`text_embeds` = projected EOT feature).
    params: its weights.
    tokenizer: its CLIP tokenizer.
    name: the model's name as stored in embedding files.
    random_init: True when the weights are random (the offline demo), not CLIP's.
  """
  model: transformers.FlaxCLIPTextModelWithProjection
  params: dict
  tokenizer: transformers.CLIPTokenizer
  name: str
  random_init: bool = False

  @property
  def embed_dim(self) -> int:
    """Width of the sentence embedding (the projection: 512 for ViT-B/32)."""
    return self.model.config.projection_dim

  @property
  def word_dim(self) -> int:
    """Width of the word features (the hidden size: 512 for ViT-B/32)."""
    return self.model.config.hidden_size

  @functools.cached_property
  def _forward(self) -> Callable:
    return jax.jit(functools.partial(_forward, self.model.module))

  def tokenize(self, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, `(R, L)` int32 and bool, L = the longest sentence.

    Sentences longer than the model's context are truncated (their end-of-text token is
    kept); padding is the tokenizer's pad token (`<|endoftext|>` for CLIP).
    """
    max_length = min(self.model.config.max_position_embeddings, MAX_LENGTH)
    ids = self.tokenizer(list(sentences))["input_ids"]
    too_long = [i for i, row in enumerate(ids) if len(row) > max_length]
    if too_long:
      logging.warning("%d of %d sentences have more than %d tokens and are truncated "
                      "(their end-of-text token is kept), e.g. %r", len(too_long), len(ids),
                      max_length, sentences[too_long[0]][:80])
      for i in too_long:
        ids[i] = ids[i][:max_length - 1] + ids[i][-1:]
    length = max(len(row) for row in ids)
    input_ids = np.full((len(ids), length), self.tokenizer.pad_token_id, np.int32)
    mask = np.zeros((len(ids), length), bool)
    for i, row in enumerate(ids):
      input_ids[i, :len(row)] = row
      mask[i, :len(row)] = True
    return input_ids, mask

  def encode(self, sentences: Sequence[str], batch_size: int = 256,
             dtype: np.dtype = np.float32,
             progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sentence embeddings and word features of `sentences`.

    Batches are padded to `batch_size` rows, so the model compiles once per call.

    Args:
      sentences: R sentences.
      batch_size: rows per model call.
      dtype: dtype of the returned features (computed in float32, then cast).
      progress: show a progress bar over the batches.

    Returns:
      `text_embedding` `(R, P)` L2-normalised; `word_features` `(R, L, H)`, zero where
      the mask is False; `word_mask` `(R, L)` bool. P = `embed_dim`, H = `word_dim`,
      L = the longest tokenised sentence (≤ 77).
    """
    if not sentences:
      raise ValueError("no sentences to encode")
    input_ids, mask = self.tokenize(sentences)
    rows, length = input_ids.shape
    batch_size = min(batch_size, rows)
    text_embedding = np.zeros((rows, self.embed_dim), dtype)
    word_features = np.zeros((rows, length, self.word_dim), dtype)
    for start in tqdm.trange(0, rows, batch_size, desc="text batches", disable=not progress):
      stop = min(start + batch_size, rows)
      ids, valid = input_ids[start:stop], mask[start:stop]
      if stop - start < batch_size:  # repeat the first row: same shape, discarded below
        fill = batch_size - (stop - start)
        ids = np.concatenate([ids, np.repeat(ids[:1], fill, 0)])
        valid = np.concatenate([valid, np.repeat(valid[:1], fill, 0)])
      embedding, words = self._forward(self.params, ids, valid)
      text_embedding[start:stop] = np.asarray(embedding)[:stop - start]
      word_features[start:stop] = np.asarray(words)[:stop - start]
    return text_embedding, word_features, mask


def _forward(module, params, input_ids: jax.Array,
             attention_mask: jax.Array) -> tuple[jax.Array, jax.Array]:
  """`(B, L)` ids and mask -> L2-normalised `(B, P)` text embeds, `(B, L, H)` masked words."""
  positions = jnp.broadcast_to(jnp.arange(input_ids.shape[1]), input_ids.shape)
  out = module.apply({"params": params}, input_ids, attention_mask.astype(jnp.int32),
                     positions, deterministic=True)
  embedding = out.text_embeds / jnp.linalg.norm(out.text_embeds, axis=-1, keepdims=True)
  words = jnp.where(attention_mask[..., None], out.last_hidden_state, 0.0)
  return embedding, words


def load_text_encoder(name_or_path: str = DEFAULT_MODEL) -> TextEncoder:
  """Loads a CLIP text model and tokenizer from a local folder or the HF cache, offline.

  Args:
    name_or_path: a Hugging Face model id (looked up in the local cache only) or a folder
      with `config.json`, `vocab.json`, `merges.txt` and weights.

  Raises:
    TextModelNotFoundError: the model, its weights or its tokenizer files are missing;
      the message says how to get them.
  """
  directory = resolve_model_dir(name_or_path)
  present = set(os.listdir(directory))
  missing = [f for f in ("config.json",) + _TOKENIZER_FILES if f not in present]
  has_flax = _FLAX_WEIGHTS in present
  has_pt = any(f in present for f in _PT_WEIGHTS)
  if not (has_flax or has_pt):
    missing.append(f"weights ({_FLAX_WEIGHTS}, or {' / '.join(_PT_WEIGHTS)})")
  if missing:
    raise TextModelNotFoundError(
        f"text model folder {directory} lacks {', '.join(missing)}.\n{_how_to_get(name_or_path)}")
  if not has_flax:
    try:
      import torch  # pylint: disable=g-import-not-at-top,unused-import
    except ImportError:
      raise TextModelNotFoundError(
          f"{directory} has only PyTorch weights; converting them (from_pt=True) needs torch: "
          "`pip install torch`, or save Flax weights there with `save_pretrained`.") from None
  verbosity = transformers.logging.get_verbosity()
  # OpenAI's checkpoint is a whole CLIPModel: transformers would list every vision weight
  # it leaves out. Errors still show.
  transformers.logging.set_verbosity_error()
  try:
    # `_do_init=False`: no random initialisation (slow, eager) before the weights load.
    model, params = transformers.FlaxCLIPTextModelWithProjection.from_pretrained(
        directory, local_files_only=True, from_pt=not has_flax, _do_init=False)
  finally:
    transformers.logging.set_verbosity(verbosity)
  expected = jax.eval_shape(functools.partial(model.init_weights, input_shape=(1, 1)),
                            jax.random.PRNGKey(0))
  absent = sorted("/".join(k) for k in set(traverse_util.flatten_dict(expected)) -
                  set(traverse_util.flatten_dict(params)))
  if absent:
    raise TextModelNotFoundError(
        f"{directory}: the checkpoint lacks {len(absent)} weights of a CLIP text model with "
        f"projection, e.g. {absent[:3]}; use a CLIPModel or CLIPTextModelWithProjection "
        "checkpoint such as openai/clip-vit-base-patch32")
  tokenizer = transformers.CLIPTokenizer.from_pretrained(directory, local_files_only=True)
  return TextEncoder(model, params, tokenizer, name=name_or_path)


def random_text_config(vocab_size: int, tokenizer: transformers.CLIPTokenizer, *,
                       hidden_size: int = 512, num_layers: int = 2, num_heads: int = 8,
                       projection_dim: int = 512) -> transformers.CLIPTextConfig:
  """A small CLIP text config for the offline demo: CLIP's widths, two layers."""
  return transformers.CLIPTextConfig(
      vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
      num_hidden_layers=num_layers, num_attention_heads=num_heads,
      max_position_embeddings=MAX_LENGTH, projection_dim=projection_dim,
      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
      pad_token_id=tokenizer.pad_token_id)


def random_text_encoder(sentences: Sequence[str], seed: int = 0,
                        config: Optional[transformers.CLIPTextConfig] = None) -> TextEncoder:
  """A randomly initialised CLIP text model and an offline tokenizer for `sentences`.

  For demos and smoke tests where CLIP's weights cannot be downloaded: the shapes match
  ViT-B/32 (512-d embedding and word features) but the numbers carry no language
  knowledge. The encoder is marked `random_init` and named
  `random-init-clip-text(seed=...)`.

  Args:
    sentences: text the offline tokenizer's vocabulary is built from.
    seed: seeds the weights.
    config: overrides `random_text_config` (its vocabulary must cover the tokenizer's).
  """
  tokenizer = offline_tokenizer.build_offline_tokenizer(sentences, MAX_LENGTH)
  if config is None:
    config = random_text_config(len(tokenizer), tokenizer)
  if config.vocab_size < len(tokenizer):
    raise ValueError(f"config.vocab_size {config.vocab_size} < the tokenizer's "
                     f"{len(tokenizer)} tokens")
  model = transformers.FlaxCLIPTextModelWithProjection(config, _do_init=False)
  # One compiled initialisation is several times faster than transformers' eager one.
  params = jax.jit(model.init_weights, static_argnums=1)(jax.random.PRNGKey(seed), (1, 1))
  return TextEncoder(model, params, tokenizer, name=f"random-init-clip-text(seed={seed})",
                     random_init=True)
