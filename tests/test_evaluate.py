"""Evaluation wired to checkpoints: restore, feature extraction, protocols, reports, errors."""
import dataclasses
import functools
import inspect
import json
import os
import pickle
import re
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import eval as eval_configs
from configs import pretrain as pretrain_configs
from freqjax.checkpoints import pytorch as convert
from freqjax.checkpoints import store as checkpoint
from freqjax.evaluation import run as evaluate
from freqjax.pretraining import loop as pretrain
from freqjax.data import readers, streams, synthetic
from freqjax.evaluation import linear_probe, records
from freqjax.models import STGCN
from freqjax.text import descriptions, embed
from helpers.fakes import FakeTextEncoder
from helpers.torch_stgcn import random_state_dict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
  """84 synthetic samples (16 frames) and a text file of their classes (fake encoder)."""
  root = tmp_path_factory.mktemp("evaluate")
  synthetic.write_dataset(str(root / "xperformer"), num_samples=84, seed=0, num_frames=16)
  embed.embed_descriptions(descriptions.synthetic_descriptions(), FakeTextEncoder(),
                           str(root / "text.npz"))
  return root


@pytest.fixture(scope="module")
def pretrained(tiny_data):
  """A 2-step pretraining run of `configs/pretrain.py:test` on the tiny data.

  It compiles the whole MICA train step, so its users are marked slow.
  """
  data = tiny_data / "xperformer"
  config = pretrain_configs.get_config("test")
  config.data.path = str(data)
  config.text.path = str(tiny_data / "text.npz")
  train_size = len(readers.load_dataset("aimclr", str(data), "train"))
  config.optim.epochs = 2 / (train_size // config.optim.batch_size)  # exactly two steps
  workdir = tiny_data / "run"
  state = jax.device_get(pretrain.pretrain(config, str(workdir)))
  return {"workdir": workdir, "data": data, "state": state, "config": config}


def small_eval_config(variant: str, **overrides):
  """An eval config with a short probe and small batches, for the tiny data."""
  config = eval_configs.get_config(variant)
  config.features.batch_size = 16
  config.linear.epochs = 4
  config.linear.batch_size = 16
  config.knn.k = 5
  config.finetune.epochs = 1
  config.finetune.batch_size = 8
  for name, value in overrides.items():
    node = config
    *parents, field = name.split("__")
    for parent in parents:
      node = node[parent]
    node[field] = value
  return config


def read_results(report_dir):
  with open(os.path.join(report_dir, "results.json")) as f:
    return json.load(f)


def documented_fields(record_type) -> list[str]:
  """The names a record's docstring lists under `Attributes:`, in order."""
  attributes = inspect.getdoc(record_type).split("Attributes:\n", 1)[1]
  return re.findall(r"^  (\w+):", attributes, flags=re.MULTILINE)


def check_extra(extra: dict, record, *, absent=()) -> None:
  """`extra` holds exactly the documented fields of `record` then of `RunRecord` (less the
  optional ones `absent`), with `record`'s values."""
  expected = [name for name in documented_fields(type(record)) if name not in absent]
  assert list(extra) == expected + documented_fields(records.RunRecord)
  assert {name: extra[name] for name in expected} == record.to_json()


def test_every_record_type_documents_exactly_its_fields():
  protocols = (records.LinearProbeRecord, records.KnnRecord, records.FinetuneRecord)
  for record_type in (*protocols, records.MinivalSelection, records.RunRecord):
    assert documented_fields(record_type) == [f.name for f in dataclasses.fields(record_type)]
  for record_type in protocols:  # the run's fields never replace a protocol's in "extra"
    assert not set(documented_fields(record_type)) & set(documented_fields(records.RunRecord))
  # An optional field left unset is not written; set, it is (a record converted in turn).
  knn = records.KnnRecord(k=5, temperature=0.1, num_train=np.int64(12))
  assert knn.to_json() == {"reported": knn.reported, "k": 5, "temperature": 0.1,
                           "num_train": 12}
  finetune = records.FinetuneRecord(
      encoder_mode="eval", label_fraction=0.5, num_labelled=2, num_labelled_per_class=(1, 1),
      batch_size=2, num_devices=1, parallel_backend="pmap", steps_per_epoch=1, num_steps=1,
      train_seconds=0.5, curve={"epoch": [1]}, labelled_samples=("a", "b"))
  assert finetune.to_json()["labelled_samples"] == ["a", "b"]
  assert "labelled_samples" not in dataclasses.replace(finetune,
                                                       labelled_samples=None).to_json()


@pytest.mark.slow
def test_linear_and_knn_restore_the_checkpoint_and_write_reports(pretrained):
  workdir = str(pretrained["workdir"])
  test_split = readers.load_dataset("aimclr", str(pretrained["data"]), "val")
  for variant in ("linear", "knn"):
    out = evaluate.evaluate(small_eval_config(variant), workdir)
    results = read_results(out.report_dir)
    assert out.report_dir == os.path.join(workdir, "eval", variant)
    assert results["checkpoint_step"] == out.checkpoint_step == 2
    assert results["num_test_samples"] == len(test_split)
    assert results["class_names"] == list(synthetic.CLASS_NAMES)
    # Inherited from the pretraining config.json: frames, stream, model width, FreST.
    assert results["config"]["data"]["num_frames"] == pretrained["config"].data.num_frames
    assert results["config"]["data"]["stream"] == "joint"
    assert results["config"]["model"]["hidden_dim"] == pretrained["config"].model.hidden_dim
    assert results["config"]["model"]["frest_blocks"] == [9]
    labels = np.load(os.path.join(out.report_dir, "test_labels.npy"))
    np.testing.assert_array_equal(labels, test_split.labels)
    logits = np.load(os.path.join(out.report_dir, "test_logits.npy"))
    assert logits.shape == (len(test_split), 14)
    accuracy = 100 * np.mean(logits.argmax(1) == labels)
    assert out.test_top1 == pytest.approx(accuracy, abs=1e-4)
    assert "report:" in out.summary
  extra = read_results(os.path.join(workdir, "eval", "linear"))["extra"]
  assert extra["num_train"] == extra["num_train_split"]  # the reported probe saw all train
  selection = extra["minival_selection"]
  assert selection["num_train"] + selection["num_minival"] == extra["num_train"]
  assert 1 <= selection["minival_epoch"] <= 4


@pytest.mark.slow
def test_restored_encoder_is_the_checkpoint(pretrained):
  setup = evaluate.resolve(small_eval_config("linear"), str(pretrained["workdir"]))
  x = np.zeros((2, 3, 16, 25, 2), np.float32)
  variables, step, where = evaluate.load_encoder(setup, x)
  assert step == 2 and "step 2" in where
  # The step comes from the checkpoint itself, not from parsing the description.
  _, step, _ = checkpoint.load_encoder_variables(str(pretrained["workdir"]), setup.encoder)
  assert step == 2 and type(step) is int
  state = pretrained["state"]
  expected = {"params": state.params["encoder"], "batch_stats": state.batch_stats}
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(variables), expected)


class ArrayDataset:
  """A dataset over arrays (the pipeline's protocol), reading rows as given."""

  def __init__(self, x, labels):
    self.x, self.labels = x, labels

  def __len__(self):
    return len(self.labels)

  def read(self, indices):
    return self.x[np.asarray(indices)]


@pytest.mark.parametrize("stream", ["joint", "bone"])
def test_features_equal_a_direct_forward_each_sample_once(stream):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(13, 3, 12, 25, 2)).astype(np.float32)  # 13 = 3 batches of 4 + 1
  labels = rng.integers(0, 5, 13)
  # Flax's init: under the reference init (N(0, 0.02) kernels) an untrained encoder in
  # inference mode gives features of ~1e-9, too small for the comparisons below to mean much.
  encoder = STGCN(hidden_channels=4, hidden_dim=16, frest_blocks=(9,), init_scheme="flax")
  variables = jax.jit(functools.partial(encoder.init, train=False))(
      jax.random.PRNGKey(1), jnp.asarray(x[:2]))
  # Non-trivial running statistics, so inference mode differs from batch statistics.
  def perturb(path, stat):
    if jax.tree_util.keystr(path).endswith("['var']"):
      return stat * rng.uniform(0.5, 2.0, stat.shape).astype(np.float32)
    return stat + rng.normal(0.0, 0.1, stat.shape).astype(np.float32)

  variables = {"params": variables["params"], "batch_stats": jax.tree_util.tree_map_with_path(
      perturb, variables["batch_stats"])}
  features, got_labels = evaluate.extract_features(encoder, variables, ArrayDataset(x, labels),
                                                   batch_size=4, stream=stream)
  direct, _ = jax.jit(functools.partial(encoder.apply, train=False))(
      variables, streams.to_stream(jnp.asarray(x), stream))
  np.testing.assert_allclose(features, np.asarray(direct), rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(got_labels, labels)
  # Rows are distinct samples, in dataset order: no padding row was written anywhere.
  assert np.all(np.abs(features).sum(axis=1) > 0)
  assert len(np.unique(features.round(4), axis=0)) == 13


@pytest.mark.slow
def test_semi_subset_is_class_balanced_and_disjoint_from_test(pretrained):
  workdir = str(pretrained["workdir"])
  out = evaluate.evaluate(small_eval_config("semi10", finetune__label_fraction=0.25), workdir)
  assert out.name == "semi_25pct"
  extra = read_results(out.report_dir)["extra"]
  train = readers.load_dataset("aimclr", str(pretrained["data"]), "train")
  test = readers.load_dataset("aimclr", str(pretrained["data"]), "val")
  chosen = extra["labelled_samples"]
  assert len(set(chosen)) == len(chosen) == extra["num_labelled"]
  assert set(chosen) <= set(train.sample_names)
  assert not set(chosen) & set(test.sample_names)
  label_of = dict(zip(train.sample_names, train.labels))
  per_class = np.bincount([label_of[name] for name in chosen], minlength=14)
  available = np.bincount(train.labels, minlength=14)
  expected = np.where(available > 0, np.maximum(1, np.floor(0.25 * available + 0.5)), 0)
  np.testing.assert_array_equal(per_class, expected)
  np.testing.assert_array_equal(extra["num_labelled_per_class"], expected)
  assert extra["num_steps"] == extra["steps_per_epoch"] == len(chosen) // 8
  assert read_results(out.report_dir)["num_test_samples"] == len(test)


def write_pytorch_npz(path):
  np.savez(path, **{f"encoder_q.{k}": v for k, v in random_state_dict(seed=3).items()})


def test_init_from_pytorch_checkpoint(tiny_data, tmp_path):
  checkpoint_path = str(tmp_path / "skeletonclr.npz")
  write_pytorch_npz(checkpoint_path)
  workdir = tmp_path / "eval_run"
  workdir.mkdir()
  data = str(tiny_data / "xperformer")
  config = small_eval_config("knn", init_from=checkpoint_path, data__path=data,
                             data__num_frames=16)
  out = evaluate.evaluate(config, str(workdir))
  results = read_results(out.report_dir)
  assert results["checkpoint_step"] is None
  assert results["extra"]["encoder"] == checkpoint_path
  assert isinstance(out.record, records.KnnRecord) and out.record.k == 5
  check_extra(results["extra"], out.record)
  assert results["config"]["model"]["frest_blocks"] == []  # SkeletonCLR's plain ST-GCN
  assert results["config"]["model"]["hidden_dim"] == 256
  assert results["extra"]["pretrain_config"] is None
  # The evaluated weights are the converted state dict, leaf for leaf.
  variables, _, _ = evaluate.load_encoder(evaluate.resolve(config, str(workdir)),
                                          np.zeros((2, 3, 16, 25, 2), np.float32))
  expected = convert.stgcn_from_pytorch(convert.load_state_dict(checkpoint_path),
                                        STGCN(frest_blocks=()), source=checkpoint_path)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(variables), expected)
  _, step, where = checkpoint.load_encoder_variables(checkpoint_path, STGCN(frest_blocks=()))
  assert step is None and where == checkpoint_path  # a PyTorch file records no step

  with_frest = small_eval_config("knn", init_from=checkpoint_path, data__path=data,
                                 data__num_frames=16, model__frest_blocks=(9,))
  with pytest.raises(evaluate.EvaluationError, match=r"frest_blocks='\(\)'"):
    evaluate.evaluate(with_frest, str(workdir))


def test_standardized_linear_probe_is_wired_and_recorded(tiny_data, tmp_path):
  # A random-init encoder (no pretraining needed), small, on the tiny data.
  config = small_eval_config(
      "linear", init_from="random", name="linear_std",
      data__path=str(tiny_data / "xperformer"), data__num_frames=16, model__hidden_channels=4,
      model__hidden_dim=16, model__frest_blocks=(), linear__standardize=True)
  out = evaluate.evaluate(config, str(tmp_path))
  results = read_results(out.report_dir)
  assert results["config"]["linear"]["standardize"] is True
  # The linear protocol's record, minival selection included (the default minival_size).
  assert isinstance(out.record, records.LinearProbeRecord)
  check_extra(results["extra"], out.record)
  selection = results["extra"]["minival_selection"]
  assert list(selection) == documented_fields(records.MinivalSelection)
  assert selection["num_train"] + selection["num_minival"] == out.record.num_train
  assert results["extra"]["encoder"] == out.run_record.encoder
  # The driver hands the test features to the report: a t-SNE map beside the confusion matrix.
  assert "embedding.png" in results["files"]
  assert os.path.getsize(os.path.join(out.report_dir, "embedding.png")) > 0
  assert "standardised with the training split's mean" in results["extra"]["reported"]
  # The reported logits are those of the standardised probe on the encoder's features.
  setup = evaluate.resolve(config, str(tmp_path))
  train, test, _ = evaluate.load_splits(setup.config)
  variables, _, _ = evaluate.load_encoder(setup, train.read(np.arange(2)))
  kwargs = dict(batch_size=16, stream="joint")
  train_x, train_y = evaluate.extract_features(setup.encoder, variables, train, **kwargs)
  test_x, test_y = evaluate.extract_features(setup.encoder, variables, test, **kwargs)
  probe = dict(num_classes=14, epochs=4, batch_size=16, seed=0)
  expected = linear_probe.train_linear_probe(train_x, train_y, test_x, test_y,
                                             standardize=True, **probe)
  recipe = linear_probe.train_linear_probe(train_x, train_y, test_x, test_y, **probe)
  logits = np.load(os.path.join(out.report_dir, "test_logits.npy"))
  np.testing.assert_allclose(logits, expected["test_logits"], rtol=1e-5, atol=1e-5)
  assert not np.allclose(logits, recipe["test_logits"], atol=1e-3)


def test_missing_checkpoint_and_missing_settings_are_clear_errors(tmp_path):
  with pytest.raises(FileNotFoundError, match=r"no checkpoint .*python train.py"):
    evaluate.evaluate(small_eval_config("linear"), str(tmp_path))
  with pytest.raises(FileNotFoundError, match="no such workdir"):
    evaluate.evaluate(small_eval_config("linear"), str(tmp_path / "absent"))
  with pytest.raises(evaluate.EvaluationError, match="data.path is not set"):
    evaluate.evaluate(small_eval_config("linear", init_from="random"), str(tmp_path))
  (tmp_path / "checkpoints").mkdir()
  with pytest.raises(evaluate.EvaluationError, match="config.json is missing"):
    evaluate.evaluate(small_eval_config("linear"), str(tmp_path))


@pytest.mark.slow
def test_transfer_without_data_and_model_overrides_are_clear_errors(pretrained):
  with pytest.raises(evaluate.EvaluationError, match="data.path"):
    evaluate.evaluate(small_eval_config("transfer"), str(pretrained["workdir"]))
  # Overriding the model of a freqjax checkpoint: the mismatch is named, not a jax error.
  with pytest.raises(evaluate.EvaluationError, match=r"unexpected: .*frest9"):
    evaluate.evaluate(small_eval_config("linear", model__frest_blocks=()),
                      str(pretrained["workdir"]))


@pytest.mark.slow
def test_random_init_baseline_and_transfer_use_their_own_settings(pretrained, tmp_path):
  workdir = str(pretrained["workdir"])
  out = evaluate.evaluate(small_eval_config("knn", init_from="random", name="knn_random"),
                          workdir)
  results = read_results(out.report_dir)
  assert out.report_dir == os.path.join(workdir, "eval", "knn_random")
  assert results["checkpoint_step"] is None
  assert results["extra"]["encoder"].startswith("random initialisation")

  # Transfer: another dataset, with 5 classes and no class names; the class count comes
  # from the target data, not from the pretraining config (14).
  target = tmp_path / "target"
  target.mkdir()
  rng = np.random.default_rng(0)
  for split, n in (("train", 20), ("val", 11)):
    np.save(target / f"{split}_position.npy",
            rng.normal(size=(n, 3, 16, 25, 2)).astype(np.float32))
    with open(target / f"{split}_label.pkl", "wb") as f:
      pickle.dump(([f"{split}{i}" for i in range(n)], [i % 5 for i in range(n)]), f)
  out = evaluate.evaluate(small_eval_config("transfer", data__path=str(target)), workdir)
  results = read_results(out.report_dir)
  assert out.report_dir == os.path.join(workdir, "eval", "transfer")
  assert results["config"]["data"]["path"] == str(target)
  assert results["num_classes"] == 5 and results["num_test_samples"] == 11
  assert results["class_names"] == [f"class {i}" for i in range(5)]
  assert results["checkpoint_step"] == 2


def test_eval_config_variants():
  assert eval_configs.get_config("semi1").finetune.label_fraction == 0.01
  assert evaluate.report_name(eval_configs.get_config("semi1")) == "semi_1pct"
  assert evaluate.report_name(eval_configs.get_config("semi10")) == "semi_10pct"
  assert evaluate.report_name(eval_configs.get_config("finetune")) == "finetune"
  for variant in ("linear", "knn", "finetune", "transfer"):
    assert eval_configs.get_config(variant).protocol == variant
  with pytest.raises(ValueError, match="Unknown evaluation config"):
    eval_configs.get_config("linaer")


@pytest.mark.slow
def test_eval_py_cli(pretrained):
  result = subprocess.run(
      [sys.executable, "eval.py", "--config", "configs/eval.py:knn", "--config.knn.k=5",
       "--config.features.batch_size=16", f"--workdir={pretrained['workdir']}"],
      cwd=ROOT, check=True, timeout=600, capture_output=True, text=True)
  assert "knn evaluation, checkpoint step 2" in result.stdout
  assert os.path.join(str(pretrained["workdir"]), "eval", "knn") in result.stdout
