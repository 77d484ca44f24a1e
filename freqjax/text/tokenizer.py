"""An offline CLIP BPE tokenizer whose vocabulary is built from the sentences themselves.

Real runs use the real tokenizer, read from the model directory (`vocab.json` and
`merges.txt` beside the weights; see `clip.load_text_encoder`). This one exists only for
the randomly initialised demo model (`clip.random_text_encoder`) and for tests, where no
tokenizer can be downloaded. It is a genuine `transformers.CLIPTokenizer` — same text
cleaning, same pre-tokenisation, same byte-level BPE, `<|startoftext|>` … `<|endoftext|>`
framing and `<|endoftext|>` padding — over a small vocabulary laid out like CLIP's: the
256 byte symbols, the same with the end-of-word mark `</w>`, one merged symbol per merge
rule, then the two special tokens (so `<|endoftext|>` has the highest id, as in CLIP).
The merge rules are learnt by plain byte-pair encoding on the words of the given
sentences until each of those words is one token; other text still tokenises (into
smaller pieces, down to bytes).
"""
import collections
import json
import os
import tempfile
from typing import Iterable

from transformers import CLIPTokenizer
from transformers.models.clip.tokenization_clip import bytes_to_unicode

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
END_OF_WORD = "</w>"


def _write(directory: str, vocab: list[str], merges: list[tuple[str, str]]) -> None:
  with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
    json.dump({token: i for i, token in enumerate(vocab)}, f, ensure_ascii=False)
  with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
    # CLIPTokenizer skips the first line of merges.txt (a version header in CLIP's file).
    f.write("#version: freqjax offline vocabulary\n")
    f.writelines(f"{a} {b}\n" for a, b in merges)


def _load(directory: str, max_length: int) -> CLIPTokenizer:
  return CLIPTokenizer(os.path.join(directory, "vocab.json"),
                       os.path.join(directory, "merges.txt"), model_max_length=max_length)


def _merge(word: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
  out, i = [], 0
  while i < len(word):
    if word[i:i + 2] == pair:
      out.append(pair[0] + pair[1])
      i += 2
    else:
      out.append(word[i])
      i += 1
  return tuple(out)


def _learn_merges(words: collections.Counter) -> list[tuple[str, str]]:
  """Byte-pair encoding on word counts: merge the most frequent adjacent pair (ties by
  the pair itself, so the result is deterministic) until every word is one symbol."""
  merges = []
  while True:
    pairs = collections.Counter()
    for word, count in words.items():
      for pair in zip(word, word[1:]):
        pairs[pair] += count
    if not pairs:
      return merges
    best = min(pairs.items(), key=lambda item: (-item[1], item[0]))[0]
    merges.append(best)
    words = collections.Counter({_merge(word, best): count for word, count in words.items()})


def build_offline_tokenizer(sentences: Iterable[str], max_length: int = 77) -> CLIPTokenizer:
  """A `CLIPTokenizer` with a vocabulary made from the words of `sentences` (no network).

  Args:
    sentences: the text the tokenizer should cover well.
    max_length: the tokenizer's `model_max_length` (CLIP: 77 tokens with the specials).

  Returns:
    The tokenizer; `save_pretrained(dir)` writes it beside a model.
  """
  symbols = list(bytes_to_unicode().values())
  base_vocab = symbols + [s + END_OF_WORD for s in symbols] + [BOS, EOS]
  with tempfile.TemporaryDirectory() as directory:
    # With no merges the tokenizer splits text exactly as CLIP pre-tokenises it, one
    # byte symbol per token and `</w>` on each word's last one: that gives the words.
    _write(directory, base_vocab, [])
    byte_level = _load(directory, max_length)
    words = collections.Counter()
    word: list[str] = []
    for sentence in sentences:
      for token in byte_level.tokenize(sentence):
        word.append(token)
        if token.endswith(END_OF_WORD):
          words[tuple(word)] += 1
          word = []

    merges = _learn_merges(words)
    # Different merges can spell the same symbol ("ab" + "c", "a" + "bc"): one id each.
    merged = list(dict.fromkeys(a + b for a, b in merges))
    vocab = symbols + [s + END_OF_WORD for s in symbols] + merged
    _write(directory, vocab + [BOS, EOS], merges)
    return _load(directory, max_length)
