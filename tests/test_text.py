"""The CLIP text encoder, the offline tokenizer and the embedding CLI, on a tiny model."""
import json

import jax
import numpy as np
import pytest
import transformers

from freqjax.text import clip
from freqjax.text import descriptions as dlib
from freqjax.text import embed
from freqjax.text import table as tlib
from freqjax.text import tokenizer as tlib_tokenizer

SENTENCES = ["a person drink water.", "two persons hugging each other.", "bow.",
             "the right hand lifts a cup up to the mouth and the head tilts back slowly."]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
  """A tiny random CLIPModel checkpoint (as OpenAI's is a CLIPModel) with its tokenizer."""
  directory = tmp_path_factory.mktemp("tiny_clip")
  tokenizer = tlib_tokenizer.build_offline_tokenizer(SENTENCES)
  text = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
              num_hidden_layers=2, num_attention_heads=2, projection_dim=16,
              max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
  vision = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                num_attention_heads=2, image_size=16, patch_size=8, projection_dim=16)
  config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)
  model = transformers.FlaxCLIPModel(config, _do_init=False)
  # A compiled initialisation: much faster than transformers' eager one on a small CPU.
  params = jax.jit(model.init_weights, static_argnums=1)(jax.random.PRNGKey(0),
                                                         model.input_shape)
  model.save_pretrained(directory, params=params)
  tokenizer.save_pretrained(directory)
  return model, params, str(directory)


@pytest.fixture(scope="module")
def encoder(tiny_clip):
  return clip.load_text_encoder(tiny_clip[2])


def test_sentence_embedding_is_normalised_get_text_features(tiny_clip, encoder):
  model, params, _ = tiny_clip
  emb, _, mask = encoder.encode(SENTENCES, batch_size=8)
  ids, mask2 = encoder.tokenize(SENTENCES)
  np.testing.assert_array_equal(mask, mask2)
  features = jax.jit(lambda p, i, m: model.get_text_features(i, m, params=p))
  reference = np.array(features(params, ids, mask.astype(np.int32)))
  reference /= np.linalg.norm(reference, axis=-1, keepdims=True)
  np.testing.assert_allclose(emb, reference, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(emb, axis=-1), 1, atol=1e-6)
  assert emb.shape == (4, 16) and encoder.embed_dim == 16 and encoder.word_dim == 32


def test_word_features_are_last_hidden_states_under_the_mask(tiny_clip, encoder):
  model, params, _ = tiny_clip
  _, words, mask = encoder.encode(SENTENCES, batch_size=8)
  ids, _ = encoder.tokenize(SENTENCES)
  positions = np.broadcast_to(np.arange(ids.shape[1]), ids.shape)
  text_model = jax.jit(lambda p, *a: model.module.apply(
      {"params": p}, *a, method=lambda m, *a: m.text_model(*a)).last_hidden_state)
  hidden = np.asarray(text_model(params, ids, mask.astype(np.int32), positions))
  np.testing.assert_allclose(words[mask], hidden[mask], atol=1e-5)
  assert not words[~mask].any()
  # Lengths: <|startoftext|>, the words, ".", <|endoftext|>; L is the longest sentence.
  assert mask.sum(1).tolist() == [7, 8, 4, 19] and words.shape == (4, 19, 32)
  assert (ids[~mask] == encoder.tokenizer.pad_token_id).all()


def test_padding_does_not_change_a_sentence(encoder):
  alone_emb, alone_words, alone_mask = encoder.encode(SENTENCES[2:3], batch_size=1)
  # In a batch padded with extra rows, and padded to the length of a longer sentence.
  emb, words, mask = encoder.encode(SENTENCES[2:], batch_size=5)
  np.testing.assert_allclose(emb[0], alone_emb[0], atol=1e-6)
  n = alone_mask.sum()
  assert mask[0].sum() == n and words.shape[1] > n
  np.testing.assert_allclose(words[0, :n], alone_words[0, :n], atol=1e-5)
  # Batch size changes nothing either (4 sentences over batches of 3, one padded).
  emb3, _, _ = encoder.encode(SENTENCES, batch_size=3)
  emb8, _, _ = encoder.encode(SENTENCES, batch_size=8)
  np.testing.assert_allclose(emb3, emb8, atol=1e-6)


def test_long_sentences_keep_their_end_token(encoder):
  long = " ".join(["bow"] * 100) + "."
  ids, mask = encoder.tokenize([long, "bow."])
  assert ids.shape == (2, 77) and mask[0].all()
  assert ids[0, -1] == encoder.tokenizer.eos_token_id


def test_offline_tokenizer(tmp_path):
  tokenizer = tlib_tokenizer.build_offline_tokenizer(SENTENCES)
  # CLIP's layout: the end-of-text token is the highest id, and pads.
  assert tokenizer.eos_token_id == len(tokenizer) - 1 == tokenizer.pad_token_id
  assert tokenizer.bos_token_id == len(tokenizer) - 2
  words = "the right hand lifts a cup up to the mouth".split()
  assert tokenizer.tokenize(" ".join(words)) == [w + "</w>" for w in words]
  # Unseen text (upper case, unknown words, non-ASCII) still tokenises and decodes.
  text = "Zebra’s XYZ?"
  ids = tokenizer(text)["input_ids"]
  assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
  decoded = tokenizer.decode(ids, skip_special_tokens=True)
  assert decoded.replace(" ", "") == "zebra’sxyz?"
  tokenizer.save_pretrained(tmp_path)
  again = transformers.CLIPTokenizer.from_pretrained(tmp_path, local_files_only=True)
  assert again(SENTENCES)["input_ids"] == tokenizer(SENTENCES)["input_ids"]


def test_missing_model_is_one_clear_message(tmp_path, capsys):
  (tmp_path / "config.json").write_text("{}")
  with pytest.raises(clip.TextModelNotFoundError) as e:
    clip.load_text_encoder(str(tmp_path))
  message = str(e.value)
  assert "lacks vocab.json, merges.txt, weights" in message
  assert "huggingface-cli download" in message and "--model /path" in message
  with pytest.raises(clip.TextModelNotFoundError, match="not in the Hugging Face cache"):
    clip.load_text_encoder("nobody-here/no-such-clip")
  descriptions = tmp_path / "d.json"
  descriptions.write_text(json.dumps({"classes": {"0": ["bow."]}}))
  status = embed.main(["--descriptions", str(descriptions), "--out", str(tmp_path / "o.npz"),
                       "--model", "nobody-here/no-such-clip"])
  err = capsys.readouterr().err
  assert status == 2 and err.startswith("python -m freqjax.text.embed: error: text model 'nobody-here/no-such-clip'")
  assert "Traceback" not in err and "huggingface-cli download nobody-here/no-such-clip" in err
  assert not (tmp_path / "o.npz").exists()


def test_checkpoint_without_projection_is_refused(tiny_clip, tmp_path):
  model, params, model_dir = tiny_clip
  params = {k: v for k, v in params.items() if k != "text_projection"}
  model.save_pretrained(tmp_path, params=params)
  for name in ("vocab.json", "merges.txt"):
    (tmp_path / name).write_bytes(open(f"{model_dir}/{name}", "rb").read())
  with pytest.raises(clip.TextModelNotFoundError, match="lacks 1 weights .*text_projection"):
    clip.load_text_encoder(str(tmp_path))


def test_cli_end_to_end(tiny_clip, encoder, tmp_path, capsys):
  _, _, model_dir = tiny_clip
  path = tmp_path / "d.json"
  path.write_text(json.dumps({"dataset": "ntu60", "classes": {
      "0": SENTENCES[:2], "hugging other person": SENTENCES[1:4]}}))
  out = tmp_path / "text.npz"
  status = embed.main(["--descriptions", str(path), "--out", str(out), "--model", model_dir,
                       "--dtype", "float32", "--batch-size", "2"])
  assert status == 0 and f"wrote {out}" in capsys.readouterr().out
  raw = np.load(out)
  assert raw["keys"].tolist() == ["0", "54"] and raw["offsets"].tolist() == [0, 2, 5]
  sentences = SENTENCES[:2] + SENTENCES[1:4]
  assert raw["sentences"].tolist() == sentences
  assert str(raw["model"]) == model_dir and not bool(raw["random_init"])
  assert str(raw["descriptions_sha256"]) == dlib.load_descriptions(str(path)).sha256()
  emb, words, mask = encoder.encode(sentences)
  np.testing.assert_allclose(raw["text_embedding"], emb, atol=1e-6)
  np.testing.assert_allclose(raw["word_features"], words, atol=1e-5)
  np.testing.assert_array_equal(raw["word_mask"], mask)
  # float16 storage, then joined to a dataset by label.
  assert embed.main(["--descriptions", str(path), "--out", str(out), "--model", model_dir]) == 0
  table = tlib.TextTable.load(str(out), expected_dim=16, sentences="random")
  assert table.text_embedding.dtype == np.float16
  batch = table.extra_fn(np.array([54, 0, 54]))(np.array([1, 0]), step=0)
  # Batch row 0 is dataset row 1 (label 0: sentences 0-1 of the file), batch row 1 is
  # dataset row 0 (label 54: sentences 2-4); each gets one of its own key's sentences.
  for got, own in ((batch["text_embedding"][0], emb[:2]), (batch["text_embedding"][1], emb[2:])):
    np.testing.assert_allclose(got, own[np.argmax(own @ got)], atol=2e-3)


def test_random_init_encoder_is_seeded_and_marked():
  config = lambda tok: transformers.CLIPTextConfig(
      vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
      num_attention_heads=2, projection_dim=16, eos_token_id=tok.eos_token_id,
      bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)
  tokenizer = tlib_tokenizer.build_offline_tokenizer(SENTENCES)
  a = clip.random_text_encoder(SENTENCES, seed=3, config=config(tokenizer))
  b = clip.random_text_encoder(SENTENCES, seed=3, config=config(tokenizer))
  c = clip.random_text_encoder(SENTENCES, seed=4, config=config(tokenizer))
  assert a.random_init and a.name == "random-init-clip-text(seed=3)"
  same = jax.tree_util.tree_map(np.array_equal, a.params, b.params)
  assert all(jax.tree_util.tree_leaves(same))
  kernel = lambda e: e.params["text_projection"]["kernel"]
  assert not np.allclose(kernel(a), kernel(c))
  assert a.tokenizer.get_vocab() == tokenizer.get_vocab()
  small = transformers.CLIPTextConfig(vocab_size=10)
  with pytest.raises(ValueError, match="vocab_size 10"):
    clip.random_text_encoder(SENTENCES, config=small)


def test_synthetic_demo_file(tmp_path, capsys):
  pytest.importorskip("freqjax.data.synthetic")
  out = tmp_path / "synthetic_text.npz"
  assert embed.main(["--synthetic", "--out", str(out)]) == 0
  captured = capsys.readouterr()
  assert "RANDOMLY INITIALISED" in captured.err
  table = tlib.TextTable.load(str(out), expected_dim=512)
  assert table.random_init and table.model == "random-init-clip-text(seed=0)"
  assert table.word_dim == 512 and len(table.keys) == 14
  assert table.descriptions_sha256 == dlib.synthetic_descriptions().sha256()
