"""Class tables, description files and the text table training reads (no text model)."""
import json
import logging

import numpy as np
import pytest

from freqjax.text import classes
from freqjax.text import descriptions as dlib
from freqjax.text import embed
from freqjax.text import table as tlib


# ----------------------------------------------------------------------------- classes


def test_ntu_class_names_as_published():
  assert len(classes.NTU60_CLASSES) == 60 and len(classes.NTU120_CLASSES) == 120
  assert classes.NTU120_CLASSES[:60] == classes.NTU60_CLASSES
  ntu = lambda action_id: classes.NTU120_CLASSES[action_id - 1]  # label = A### - 1
  assert ntu(1) == "drink water"
  assert ntu(9) == "standing up (from sitting position)"
  assert ntu(43) == "falling"
  assert ntu(58) == "handshaking"
  assert ntu(60) == "walking apart from each other"
  assert ntu(61) == "put on headphone"
  assert ntu(100) == "butt kicks (kick backward)"
  assert "rock-paper-scissors" in ntu(120)
  assert len(set(classes.NTU120_CLASSES)) == 120
  assert all(n == n.strip() and not n.endswith(".") for n in classes.NTU120_CLASSES)


def test_pku_mmd_class_names_as_published():
  pku = classes.PKU_MMD_CLASSES
  assert len(pku) == 51 and len(set(pku)) == 51
  assert pku[0] == "bow" and pku[7] == "drink water" and pku[50] == "writing"
  # The published interaction classes (1-based ids) are exactly the two-person actions.
  interactions = {12, 14, 16, 18, 21, 24, 26, 27}
  two_person = {i + 1 for i, n in enumerate(pku) if "other person" in n or n == "handshaking"}
  assert two_person == interactions
  # PKU-MMD reuses NTU's names, except for these four.
  assert set(pku) - set(classes.NTU60_CLASSES) == {
      "bow", "standing up", "put something inside pocket", "take out something from pocket"}


def test_prompts_and_class_lookup():
  assert classes.prompts("drink water", ("a person {name}.", "{name}")) == [
      "a person drink water.", "drink water"]
  assert len(classes.prompts("x")) == len(classes.PROMPT_TEMPLATES)
  with pytest.raises(ValueError, match="no '{name}'"):
    classes.prompts("x", ("a person.",))
  assert classes.class_names("pku_mmd") is classes.PKU_MMD_CLASSES
  with pytest.raises(ValueError, match="ntu120"):
    classes.class_names("ntu-120")


# ------------------------------------------------------------------------ descriptions


def _write_json(path, content):
  path.write_text(json.dumps(content), encoding="utf-8")
  return str(path)


def test_class_file_ids_and_names(tmp_path):
  path = _write_json(tmp_path / "d.json", {
      "dataset": "ntu60", "description": "test",
      "classes": {"hand waving": ["waves.", "  arm up.  "], "0": "drinks.", "59": ["apart."]}})
  d = dlib.load_descriptions(path)
  assert d.kind == "class" and d.source == path
  assert d.keys == ("0", "22", "59")  # "hand waving" is A023 -> label 22; sorted by label
  assert d.sentences == (("drinks.",), ("waves.", "arm up."), ("apart.",))
  flat, offsets = d.flat()
  assert flat == ["drinks.", "waves.", "arm up.", "apart."] and offsets == [0, 1, 3, 4]


@pytest.mark.parametrize("content, message", [
    ({"classes": {"drink water": ["x"]}}, "class names are allowed only with a \"dataset\""),
    ({"dataset": "ntu60", "classes": {"60": ["x"]}}, "out of range for 'ntu60'"),
    ({"dataset": "ntu60", "classes": {"0": ["x"], "drink water": ["y"]}}, "given twice"),
    ({"classes": {"0": []}}, "non-empty list"),
    ({"classes": {"0": ["ok", " "]}}, r"classes\['0'\]\[1\]: want a non-empty string"),
    ({"classes": {"0": ["x"]}, "clases": 1}, "unknown top-level field"),
    ({"dataset": "ntu", "classes": {"0": ["x"]}}, "choose one of"),
    ({"classes": {}}, "non-empty object"),
    ({"S001C001P001R001A001": {"a": 1}}, "per-class file puts its classes under"),
    ({"S001C001P001R001A001": 3}, "non-empty list"),
])
def test_bad_description_files(tmp_path, content, message):
  path = _write_json(tmp_path / "bad.json", content)
  with pytest.raises(dlib.DescriptionsError, match=message) as e:
    dlib.load_descriptions(path)
  assert str(e.value).startswith(path)


def test_not_json_and_missing_file(tmp_path):
  (tmp_path / "x.json").write_text("{'single': 'quotes'}")
  with pytest.raises(dlib.DescriptionsError, match="not valid JSON"):
    dlib.load_descriptions(str(tmp_path / "x.json"))
  with pytest.raises(FileNotFoundError, match="nope.json"):
    dlib.load_descriptions(str(tmp_path / "nope.json"))


def test_c2vl_sample_file_and_hash(tmp_path):
  content = {"S001C001P001R001A001": ["a man drinks.", "hand to mouth."],
             "S001C001P001R001A002": "a man eats."}
  a = dlib.load_descriptions(_write_json(tmp_path / "a.json", content))
  assert a.kind == "sample" and a.keys == tuple(content)
  assert a.sentences[1] == ("a man eats.",)
  # The hash follows the content, not the formatting of the file.
  (tmp_path / "b.json").write_text(json.dumps(content, indent=3))
  assert dlib.load_descriptions(str(tmp_path / "b.json")).sha256() == a.sha256()
  content["S001C001P001R001A002"] = "a man eats!"
  assert dlib.load_descriptions(_write_json(tmp_path / "c.json", content)).sha256() != a.sha256()


def test_write_then_read_class_descriptions(tmp_path):
  d = dlib.prompt_descriptions("pku_mmd", ("a person {name}.",))
  assert d.sentences[0] == ("a person bow.",) and len(d.keys) == 51
  dlib.write_class_descriptions(d, str(tmp_path / "p.json"), dataset="pku_mmd")
  again = dlib.load_descriptions(str(tmp_path / "p.json"))
  assert (again.keys, again.sentences, again.sha256()) == (d.keys, d.sentences, d.sha256())


def test_synthetic_descriptions_follow_the_dataset_classes():
  synthetic = pytest.importorskip("freqjax.data.synthetic")
  d = dlib.synthetic_descriptions()
  assert d.keys == tuple(str(i) for i in range(len(synthetic.CLASS_NAMES)))
  for name, sentences in zip(synthetic.CLASS_NAMES, d.sentences):
    assert len(sentences) >= 3 and name in sentences[0]
  with pytest.raises(dlib.DescriptionsError, match="'moonwalk'"):
    dlib.synthetic_descriptions(("bow", "moonwalk"))


# ------------------------------------------------------------------------------ tables


class FakeEncoder:
  """Stands in for the CLIP encoder: sentence r gets a known embedding and r+1 tokens."""
  name = "fake-encoder"
  random_init = False

  def __init__(self, dim=6, width=3):
    self.dim, self.width = dim, width

  def encode(self, sentences, batch_size, dtype, progress):
    del batch_size, progress
    rows = len(sentences)
    length = rows + 1
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(rows, self.dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    mask = np.arange(length)[None, :] < np.arange(2, rows + 2)[:, None]  # r + 2 tokens
    words = rng.normal(size=(rows, length, self.width)) * mask[..., None]
    return emb.astype(dtype), words.astype(dtype), mask


def _class_table(tmp_path, sentences="random", dtype="float32", **kwargs):
  d = dlib.class_descriptions({0: ["a0", "a1", "a2"], 1: ["b0"], 2: ["c0", "c1"]})
  path = str(tmp_path / "t.npz")
  embed.embed_descriptions(d, FakeEncoder(), path, dtype=dtype)
  return tlib.TextTable.load(path, sentences=sentences, **kwargs), np.load(path)


def test_file_round_trip(tmp_path):
  table, raw = _class_table(tmp_path)
  assert table.kind == "class" and table.keys.tolist() == ["0", "1", "2"]
  assert table.offsets.tolist() == [0, 3, 4, 6] and table.dim == 6 and table.word_dim == 3
  assert raw["sentences"].tolist() == ["a0", "a1", "a2", "b0", "c0", "c1"]
  assert str(raw["model"]) == "fake-encoder" and not bool(raw["random_init"])
  d = dlib.class_descriptions({0: ["a0", "a1", "a2"], 1: ["b0"], 2: ["c0", "c1"]})
  assert table.descriptions_sha256 == d.sha256()


def test_random_sentence_joins_by_label_and_is_seeded_by_step(tmp_path):
  table, raw = _class_table(tmp_path)
  labels = np.array([2, 0, 0, 1, 2, 0])  # a dataset of six samples
  extra_fn = table.extra_fn(labels)
  indices = np.array([1, 3, 4, 0, 2])
  seen = {0: set(), 2: set()}
  for step in range(30):
    out = extra_fn(indices, step)
    assert out["text_embedding"].dtype == np.float32 and out["word_mask"].dtype == bool
    for b, i in enumerate(indices):
      label = labels[i]
      lo, hi = raw["offsets"][label], raw["offsets"][label + 1]
      row = [r for r in range(lo, hi)
             if np.allclose(raw["text_embedding"][r], out["text_embedding"][b])]
      assert len(row) == 1  # the sample got one of its own class's sentences
      np.testing.assert_array_equal(out["word_features"][b], raw["word_features"][row[0]])
      np.testing.assert_array_equal(out["word_mask"][b], raw["word_mask"][row[0]])
      if label in seen:
        seen[label].add(row[0])
    again = table.extra_fn(labels)(indices, step)
    np.testing.assert_array_equal(again["text_embedding"], out["text_embedding"])
  assert seen == {0: {0, 1, 2}, 2: {4, 5}}  # every sentence gets its turn


def test_mean_mode(tmp_path):
  table, raw = _class_table(tmp_path, sentences="mean")
  out = table.lookup(np.array([0, 2, 1]), step=5)
  emb, words, mask = raw["text_embedding"], raw["word_features"], raw["word_mask"]
  for b, (lo, hi) in enumerate([(0, 3), (4, 6), (3, 4)]):
    mean = emb[lo:hi].mean(0)
    np.testing.assert_allclose(out["text_embedding"][b], mean / np.linalg.norm(mean), atol=1e-6)
    tokens = np.concatenate([words[r][mask[r]] for r in range(lo, hi)])
    n = len(tokens)
    np.testing.assert_array_equal(out["word_features"][b, :n], tokens)
    assert out["word_mask"][b].sum() == n and out["word_mask"][b, :n].all()
    assert not out["word_features"][b, n:].any()
  # Row r has r + 2 tokens; key 2 (rows 4, 5) has the most, 6 + 7: the batch's length.
  assert out["word_features"].shape == (3, 13, 3) and table.num_words == 13
  np.testing.assert_array_equal(table.lookup(np.array([0]), 1)["text_embedding"],
                                table.lookup(np.array([0]), 2)["text_embedding"])


def test_float16_storage_gives_unit_float32(tmp_path):
  table, raw = _class_table(tmp_path, dtype="float16")
  assert raw["text_embedding"].dtype == np.float16
  out = table.lookup(np.array([0, 1, 2]), 0)
  assert out["text_embedding"].dtype == np.float32
  np.testing.assert_allclose(np.linalg.norm(out["text_embedding"], axis=1), 1, atol=1e-6)
  # Word features travel in the stored dtype (the step converts them on the device): the
  # host does no float16 -> float32 conversion, and every value is the stored one.
  for mode in ("random", "mean"):
    words = tlib.TextTable.load(table.path, sentences=mode).lookup(np.array([0, 1, 2]), 0)
    assert words["word_features"].dtype == np.float16, mode
    stored = {tuple(row) for row in raw["word_features"][raw["word_mask"]].tolist()}
    assert {tuple(row) for row in words["word_features"][words["word_mask"]].tolist()} <= stored


def test_join_by_sample_name(tmp_path):
  d = dlib.sample_descriptions({"S001C001P001R001A001": ["x0", "x1"], "S002C001P001R001A001": "y"})
  path = str(tmp_path / "s.npz")
  embed.embed_descriptions(d, FakeEncoder(), path, dtype="float32")
  table = tlib.TextTable.load(path, sentences="random")
  raw = np.load(path)
  names = ["S002C001P001R001A001", "S001C001P001R001A001", "S002C001P001R001A001"]
  out = table.extra_fn(names)(np.array([2, 1, 0]), step=3)
  np.testing.assert_allclose(out["text_embedding"][0], raw["text_embedding"][2])
  np.testing.assert_allclose(out["text_embedding"][2], raw["text_embedding"][2])
  assert any(np.allclose(out["text_embedding"][1], raw["text_embedding"][r]) for r in (0, 1))
  with pytest.raises(tlib.TextTableError, match="keyed by sample name"):
    table.extra_fn(np.array([0, 1]))


def test_missing_keys_are_listed(tmp_path):
  table, _ = _class_table(tmp_path)
  labels = np.array([0, 5, 1, 7, 5] + list(range(10, 20)))
  with pytest.raises(tlib.TextTableError) as e:
    table.extra_fn(labels)
  message = str(e.value)
  assert message.startswith(table.path) and "12 class key(s)" in message
  assert "['5', '7', '10', '11', '12', '13', '14', '15']" in message  # first 8, deduplicated
  assert "'16'" not in message
  with pytest.raises(tlib.TextTableError, match="integer labels"):
    table.lookup(np.array(["S001C001P001R001A001"]), 0)


def test_dimension_and_file_checks(tmp_path, caplog):
  with pytest.raises(tlib.TextTableError, match="6-d but the model expects 512-d"):
    _class_table(tmp_path, expected_dim=512)
  table, raw = _class_table(tmp_path, expected_dim=6, expected_word_dim=3)
  assert table.dim == 6
  with pytest.raises(tlib.TextTableError, match="text.sentences"):
    tlib.TextTable.load(table.path, sentences="all")
  with pytest.raises(FileNotFoundError, match="python -m freqjax.text.embed"):
    tlib.TextTable.load(str(tmp_path / "none.npz"))
  content = dict(raw)
  del content["word_mask"]
  np.savez(tmp_path / "broken.npz", **content)
  with pytest.raises(tlib.TextTableError, match=r"\['word_mask'\] are missing"):
    tlib.TextTable.load(str(tmp_path / "broken.npz"))
  content = dict(raw, offsets=np.array([0, 3, 3, 6]))
  np.savez(tmp_path / "broken.npz", **content)
  with pytest.raises(tlib.TextTableError, match="at least 1 row per key"):
    tlib.TextTable.load(str(tmp_path / "broken.npz"))
  np.savez(tmp_path / "random.npz", **dict(raw, random_init=np.asarray(True)))
  with caplog.at_level(logging.WARNING):
    tlib.TextTable.load(str(tmp_path / "random.npz"))
  assert "RANDOMLY INITIALISED" in caplog.text


def test_feeds_the_input_pipeline(tmp_path):
  pipeline = pytest.importorskip("freqjax.data.pipeline")
  table, raw = _class_table(tmp_path, sentences="mean")

  class Dataset:
    labels = np.array([0, 1, 2, 1, 0, 2, 2, 0])

    def __len__(self):
      return len(self.labels)

    def read(self, indices):
      return np.zeros((len(indices), 3, 4, 25, 2), np.float32)

  batches = pipeline.train_batches(Dataset(), 4, seed=0, num_devices=1, process_index=0,
                                   process_count=1,
                                   extra_fn=tlib.dataset_extra_fn(table, Dataset()))
  batch = next(batches)
  assert batch["text_embedding"].shape == (1, 4, 6)
  expected = table.lookup(batch["label"][0], 0)["text_embedding"]
  np.testing.assert_array_equal(batch["text_embedding"][0], expected)
