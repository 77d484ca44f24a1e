"""The pictures (freqjax.visualize): each file is made from tiny data and opened with PIL;
the numbers behind them are checked against numpy references."""
import functools
import json
import pickle
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest
import threadpoolctl

from configs import pretrain as pretrain_configs
from freqjax import optim
from freqjax.checkpoints import store as checkpoint
from freqjax.data import augment, pipeline, readers, streams, synthetic
from freqjax.evaluation import report
from freqjax.models import STGCN
from freqjax.pretraining import resume
from freqjax.pretraining import state as train_state
from freqjax.visualize import __main__ as visualize_main
from freqjax.visualize import curves, embedding, frest, skeleton

FRAMES = 12
ORANGE = np.array([255, 127, 14])  # matplotlib's tab:orange, the second person


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
  """t-SNE's OpenMP threads spin against the other test worker on a 2-core machine: a
  60-point map took 17 s with two threads there, 1.6 s with one."""
  with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
    yield


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  out = tmp_path_factory.mktemp("synthetic")
  synthetic.write_dataset(str(out), num_samples=40, num_frames=FRAMES, seed=0)
  return str(out)


def _sample_of(data_dir, two_persons: bool) -> int:
  dataset = readers.load_dataset("aimclr", data_dir, "train")
  second = np.abs(dataset.read(np.arange(len(dataset)))[..., 1]).reshape(len(dataset), -1)
  return int(np.flatnonzero(second.max(axis=1) > 0 if two_persons else
                            second.max(axis=1) == 0)[0])


def _gif_frames(path) -> list[np.ndarray]:
  with Image.open(path) as gif:
    assert gif.format == "GIF"
    frames = []
    for i in range(gif.n_frames):
      gif.seek(i)
      frames.append(np.asarray(gif.convert("RGB")))
  return frames


def _orange_pixels(image: np.ndarray) -> int:
  return int(np.sum(np.all(np.abs(image.astype(int) - ORANGE) < 40, axis=-1)))


def test_frame_indices_keep_all_or_spread_evenly():
  np.testing.assert_array_equal(skeleton.frame_indices(10, 64), np.arange(10))
  picked = skeleton.frame_indices(300, 64)
  assert len(picked) == 64 and picked[0] == 0 and picked[-1] == 299
  assert np.all(np.diff(picked) >= 4) and np.all(np.diff(picked) <= 5)


def test_skeleton_gif_with_views_has_every_frame_and_both_persons(data_dir, tmp_path):
  index = _sample_of(data_dir, two_persons=True)
  out = tmp_path / "pair.gif"
  summary = skeleton.animate_sample("aimclr", data_dir, "train", index, str(out), views=True,
                                    num_frames=FRAMES, dpi=40)
  assert f"{FRAMES} frames" in summary and "label" in summary
  assert out.stat().st_size > 0
  frames = _gif_frames(out)
  assert len(frames) == FRAMES
  height, width, _ = frames[0].shape
  assert width > 2 * height  # three panels side by side
  assert min(_orange_pixels(f) for f in frames) > 10  # the second person is drawn


def test_skeleton_gif_skips_an_absent_second_person_and_caps_frames(data_dir, tmp_path):
  index = _sample_of(data_dir, two_persons=False)
  out = tmp_path / "single.gif"
  skeleton.animate_sample("aimclr", data_dir, "train", index, str(out), projection="2d",
                          num_frames=FRAMES, max_frames=5, dpi=40)
  frames = _gif_frames(out)
  assert len(frames) == 5
  assert max(_orange_pixels(f) for f in frames) == 0


def _write_other_formats(data_dir, out_dir) -> dict[str, tuple[str, str]]:
  """The synthetic train split as a PySKL pickle and a CTR-GCN archive."""
  dataset = readers.load_dataset("aimclr", data_dir, "train")
  x = dataset.read(np.arange(len(dataset)))  # (N, C, T, V, M)
  pyskl = {"split": {"xsub_train": list(dataset.sample_names)}, "annotations": [
      {"frame_dir": name, "label": int(label), "keypoint": sample.transpose(3, 1, 2, 0),
       "total_frames": FRAMES}
      for name, label, sample in zip(dataset.sample_names, dataset.labels, x)]}
  with open(out_dir / "pyskl.pkl", "wb") as f:
    pickle.dump(pyskl, f)
  flat = x.transpose(0, 2, 4, 3, 1).reshape(len(x), FRAMES, -1)  # (N, T, M·V·C)
  np.savez(out_dir / "ctrgcn.npz", x_train=flat,
           y_train=np.eye(dataset.num_classes)[dataset.labels])
  return {"pyskl": (str(out_dir / "pyskl.pkl"), "xsub_train"),
          "ctrgcn": (str(out_dir / "ctrgcn.npz"), "train")}


@pytest.mark.parametrize("data_format", ["pyskl", "ctrgcn"])
def test_skeleton_gif_from_the_other_formats(data_dir, tmp_path, data_format):
  path, split = _write_other_formats(data_dir, tmp_path)[data_format]
  index = _sample_of(data_dir, two_persons=True)
  out = tmp_path / "sample.gif"
  summary = skeleton.animate_sample(data_format, path, split, index, str(out),
                                    projection="2d", num_frames=FRAMES, max_frames=3, dpi=30)
  assert len(_gif_frames(out)) == 3 and "(#" in summary
  assert max(_orange_pixels(f) for f in _gif_frames(out)) > 0


def test_augmented_views_are_augment_s_views_of_one_key():
  x = np.random.default_rng(0).normal(size=(3, FRAMES, 25, 2)).astype(np.float32)
  x[:, -3:] = 0.0  # padding frames
  # Non-default settings, each taken by one view or both, must reach them.
  settings = {"shear_amplitude": 0.1, "noise_std": 0.2, "noise_prob": 1.0}
  views = skeleton.augmented_views(x, seed=3, augment_kwargs=settings)
  assert list(views) == ["normal view", "extreme view"]  # left to right in the GIF
  key = jax.random.key(3)
  # Compiled, as op-by-op dispatch of the extreme view alone takes ~10 s on a loaded CPU.
  normal = jax.jit(functools.partial(augment.normal_view, shear_amplitude=0.1))
  extreme = jax.jit(functools.partial(augment.extreme_view, **settings))
  np.testing.assert_allclose(views["normal view"], normal(key, x), atol=1e-6)
  np.testing.assert_allclose(views["extreme view"], extreme(key, x), atol=1e-6)
  with pytest.raises(skeleton.SkeletonInputError, match="'shear'"):
    skeleton.augmented_views(x, augment_kwargs={"shear": 0.1})


def test_skeleton_cli_errors_are_one_line(data_dir, tmp_path, capsys):
  status = visualize_main.main(["skeleton", "--data-path", data_dir, "--index", "9999",
                                "--out", str(tmp_path / "x.gif")])
  assert status == 2
  err = capsys.readouterr().err.strip()
  assert "\n" not in err and "--index 9999 is outside split 'train'" in err
  assert not (tmp_path / "x.gif").exists()


def _write_metrics(path, lines):
  path.write_text("".join(lines))


def test_training_curves_from_a_partial_metrics_file(tmp_path):
  rows = [{"step": s, "loss": 5.0 - s / 10, "loss/instance": 4.0 - s / 10, "accuracy": s / 100,
           "lr": 0.1, "grad_norm": 1.0, "samples_per_second": 100.0, "epoch": s / 10,
           "threshold/frest9/fres": 0.5, "threshold/frest9/fret": 0.4} for s in (10, 20, 30)]
  rows[1]["monitor/knn_top1"] = 40.0
  rows[2]["loss/fm"] = float("nan")  # json writes NaN; it is not plotted
  lines = [json.dumps(row) + "\n" for row in rows]
  lines.append('{"step": 40, "loss": 1.0, "acc')  # the writer is mid-line
  _write_metrics(tmp_path / "metrics.jsonl", lines)

  read = curves.read_metrics(str(tmp_path / "metrics.jsonl"))
  assert [row["step"] for row in read] == [10, 20, 30]
  assert "loss/fm" not in read[2] and read[1]["monitor/knn_top1"] == 40.0
  panels = curves.group_panels(name for row in read for name in row)
  assert list(panels) == ["loss", "loss/instance", "accuracy", "lr", "monitor/knn_top1",
                          "threshold/", "grad_norm", "samples_per_second"]
  assert panels["threshold/"] == ["threshold/frest9/fres", "threshold/frest9/fret"]

  # Each panel draws its metric's values; the InfoNCE accuracy, a fraction in the file,
  # in percent as its title says.
  fig = curves.training_curves_figure(read, "run", "metrics.jsonl")
  drawn = {ax.get_title(): ax.get_lines()[0].get_ydata() for ax in fig.axes}
  np.testing.assert_allclose(drawn["InfoNCE accuracy (%)"], [10, 20, 30])
  np.testing.assert_allclose(drawn["loss (total)"], [4, 3, 2])
  np.testing.assert_allclose(drawn["kNN monitor top-1 (%)"], [40])

  path = curves.plot_training_curves(str(tmp_path / "metrics.jsonl"))
  assert path == str(tmp_path / "training_curves.png")
  with Image.open(path) as image:
    assert image.format == "PNG" and image.size[0] > 0
  assert (tmp_path / "training_curves.png").stat().st_size > 0
  assert not list(tmp_path.glob("*.tmp.png"))


def test_a_resumed_run_s_repeated_steps_keep_the_last_line():
  rows = [{"step": 10, "loss": 3.0}, {"step": 20, "loss": 2.0}, {"step": 30, "loss": 9.0},
          {"step": 20, "loss": 2.5}, {"step": 30, "loss": 1.5}, {"step": 40, "lr": 0.1}]
  steps, values = curves.metric_series(rows, "loss")
  np.testing.assert_array_equal(steps, [10, 20, 30])
  np.testing.assert_array_equal(values, [3.0, 2.5, 1.5])


def test_training_curves_of_an_empty_file_and_the_cli(tmp_path, capsys):
  _write_metrics(tmp_path / "metrics.jsonl", ['{"step": 1, "lo'])
  assert visualize_main.main(["curves", "--workdir", str(tmp_path)]) == 0
  assert capsys.readouterr().out.strip() == str(tmp_path / "training_curves.png")
  with Image.open(tmp_path / "training_curves.png") as image:
    assert image.format == "PNG"


def test_balanced_subset_caps_each_class_reproducibly():
  labels = np.repeat(np.arange(4), [50, 3, 20, 7])
  subset = embedding.balanced_subset(labels, 10, seed=1)
  np.testing.assert_array_equal(np.bincount(labels[subset]), [10, 3, 10, 7])
  assert len(np.unique(subset)) == len(subset) and np.all(np.diff(subset) > 0)
  np.testing.assert_array_equal(subset, embedding.balanced_subset(labels, 10, seed=1))
  assert not np.array_equal(subset, embedding.balanced_subset(labels, 10, seed=2))


def test_embedding_png(tmp_path):
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(3), 40)
  features = rng.normal(size=(120, 64)) + 5.0 * np.eye(64)[labels]
  path = embedding.plot_embedding(features, labels, ["a", "b", "c"], str(tmp_path / "e.png"),
                                  max_per_class=20)
  with Image.open(path) as image:
    assert image.format == "PNG"
  assert (tmp_path / "e.png").stat().st_size > 0
  with pytest.raises(ValueError, match="at least 5"):
    embedding.plot_embedding(features[:4], labels[:4], None, str(tmp_path / "f.png"))


def test_report_writes_the_embedding_beside_the_confusion_matrix(tmp_path):
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(3), 10)
  logits = rng.normal(size=(30, 3))
  features = rng.normal(size=(30, 8))
  with pytest.raises(ValueError, match=r"expected \(30, D\)"):
    report.write_report(tmp_path / "bad", protocol="knn", test_logits=logits,
                        test_labels=labels, test_features=features[:29])
  assert not (tmp_path / "bad").exists()  # checked before anything is written

  report.write_report(tmp_path / "knn", protocol="knn", test_logits=logits,
                      test_labels=labels, test_features=features)
  with Image.open(tmp_path / "knn" / "embedding.png") as image:
    assert image.format == "PNG"
  results = json.loads((tmp_path / "knn" / "results.json").read_text())
  assert "embedding.png" in results["files"]
  # A second report moves the first one's embedding into history with the rest.
  report.write_report(tmp_path / "knn", protocol="knn", test_logits=logits,
                      test_labels=labels)
  assert not (tmp_path / "knn" / "embedding.png").exists()
  assert list((tmp_path / "knn" / "history").glob("*/embedding.png"))


def _numpy_pass_rates(block_output, params, branch):
  """Per-bin fraction of a FreST branch's sequences whose energy ratio exceeds θ (float64)."""
  x = np.asarray(block_output, np.float64)  # (B, T, V, C)
  norm = params[f"{'spatial' if branch == 'fres' else 'temporal'}_norm"]
  mean = x.mean(-1, keepdims=True)
  x = (x - mean) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * norm["scale"] + norm["bias"]
  if branch == "fres":  # sequences over joints, one per person and frame
    x = x.reshape(-1, x.shape[2], x.shape[3])
  spectrum = np.fft.rfft(x, axis=1, norm="ortho")
  energy = (np.abs(spectrum) ** 2).sum(-1)  # (B', L_f[, V])
  lower_median = np.sort(energy, axis=1)[:, (energy.shape[1] - 1) // 2]
  passed = energy / (lower_median[:, None] + 1e-6) > float(params[branch]["threshold"])
  return np.moveaxis(passed, 1, 0).reshape(passed.shape[1], -1).mean(axis=1)


def _random_variables(encoder, x, seed=0):
  """Random params and unit batch statistics of the encoder's shapes: no initialisation to
  run (or compile), which would take longer than the test."""
  rng = np.random.default_rng(seed)
  shapes = jax.eval_shape(lambda x: encoder.init(jax.random.key(0), x, train=False), x)
  params = jax.tree.map(lambda s: 0.3 * rng.normal(size=s.shape).astype(np.float32),
                        shapes["params"])
  stats = jax.tree_util.tree_map_with_path(
      lambda path, s: np.full(s.shape, 1.0 if path[-1].key == "var" else 0.0, np.float32),
      shapes["batch_stats"])
  return {"params": params, "batch_stats": stats}


def test_frest_pass_rates_match_numpy_and_the_picture_is_written(tmp_path):
  x = jax.random.normal(jax.random.key(0), (2, 3, 16, 25, 2))
  encoder = STGCN(hidden_channels=4, hidden_dim=8, dropout=0.0, frest_blocks=(9,))
  variables = _random_variables(encoder, x)
  params = variables["params"]
  # Thresholds inside the energies' range, so that some bins pass and some do not.
  params["frest9"]["fres"]["threshold"] = np.float32(1.5)
  params["frest9"]["fret"]["threshold"] = np.float32(0.7)

  rates = frest.frest_pass_rates(encoder, variables, x)
  assert list(rates) == ["frest9/fres", "frest9/fret"]
  capture = jax.jit(lambda v, x: encoder.apply(
      v, x, train=False, mutable=["intermediates"],
      capture_intermediates=lambda m, _: m.name == "block9")[1])
  block_output = capture(variables, x)["intermediates"]["block9"]["__call__"][0]
  for name, got in rates.items():
    expected = _numpy_pass_rates(block_output, params["frest9"], name.split("/")[1])
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert got.shape == (block_output.shape[2 if name.endswith("fres") else 1] // 2 + 1,)
  assert any(0 < r < 1 for rate in rates.values() for r in rate)

  path = frest.plot_frest(params, str(tmp_path / "frest.png"), rates, title="tiny")
  with Image.open(path) as image:
    assert image.format == "PNG"
  assert (tmp_path / "frest.png").stat().st_size > 0
  plain = {name: value for name, value in params.items() if not name.startswith("frest")}
  with pytest.raises(ValueError, match="no FreST block"):
    frest.plot_frest(plain, str(tmp_path / "none.png"))


def test_frest_magnitudes_per_frequency(tmp_path):
  params = {"frest3": {"fret": {"w_global": np.ones((5, 4, 2)), "w_local": np.zeros((5, 4, 2)),
                                "threshold": np.float32(0.5)}},
            "block3": {"gcn": {"kernel": np.ones((2, 2))}}}
  assert list(frest.spectral_filters(params)) == ["frest3/fret"]
  path = frest.plot_frest(params, str(tmp_path / "f.png"))
  with Image.open(path) as image:
    assert image.format == "PNG"


def _frest_config(data_dir, frest_blocks=(8, 9)):
  """`configs/pretrain.py:test` on the tiny data, bone stream, two FreST blocks, no text."""
  config = pretrain_configs.get_config("test")
  config.data.path = data_dir
  config.data.stream = "bone"
  config.fm.weight = config.harmonizer.weight = 0.0
  config.model.frest_blocks = frest_blocks
  config.seed = 3
  return config


def _with_thresholds(encoder_params, thresholds):
  """`encoder_params` with FreST block `b`'s θ (both branches) set to `thresholds[b]`."""
  return dict(encoder_params, **{
      f"frest{b}": dict(encoder_params[f"frest{b}"], **{
          branch: dict(encoder_params[f"frest{b}"][branch], threshold=np.float32(theta))
          for branch in ("fres", "fret")})
      for b, theta in thresholds.items()})


@pytest.fixture(scope="module")
def frest_run(data_dir, tmp_path_factory):
  """A pretraining workdir as `train.py` writes it: `config.json`, and the whole train
  state (`freqjax.pretraining.state.TrainState`) saved at steps 1 and 2.

  No train step runs (compiling one takes minutes) and no initialisation (seconds): the
  states have random values of the initial state's shapes, kernels scaled by their fan-in
  and no biases so that the features depend on the input, and step 2 other FreST
  thresholds than step 1, as training moves them.
  """
  config = _frest_config(data_dir)
  workdir = tmp_path_factory.mktemp("frest_run")
  nets = train_state.build_networks(config, bn_axis_name=None)
  dataset = readers.load_dataset("aimclr", data_dir, "train", num_frames=config.data.num_frames)
  shapes = jax.eval_shape(functools.partial(
      train_state.create_train_state, config, nets, optim.sgd(config, 1)), dataset.read([0, 1]))
  rng = np.random.default_rng(0)

  def fill(path, leaf):
    name = getattr(path[-1], "key", None)
    if not jnp.issubdtype(leaf.dtype, jnp.floating) or name in ("bias", "mean"):
      return np.zeros(leaf.shape, leaf.dtype)
    if name in ("scale", "var", "edge_importance"):
      return np.ones(leaf.shape, leaf.dtype)
    scale = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if name == "kernel" else 0.3
    return (scale * rng.normal(size=leaf.shape)).astype(leaf.dtype)

  initial = jax.tree_util.tree_map_with_path(fill, shapes)
  states = {step: initial.replace(params=dict(initial.params, encoder=_with_thresholds(
      initial.params["encoder"], thresholds))) for step, thresholds in
            ((1, {8: 1.5, 9: 0.7}), (2, {8: 0.9, 9: 1.3}))}
  mngr = checkpoint.manager(str(workdir))
  for step, state in states.items():
    checkpoint.save(mngr, step, state, {"step": step})
  mngr.wait_until_finished()
  mngr.close()
  resume.write_config(config, str(workdir), 0)
  return {"workdir": workdir, "config": config, "dataset": dataset, "encoder": nets.encoder,
          "variables": {step: {"params": state.params["encoder"],
                               "batch_stats": state.batch_stats}
                        for step, state in states.items()}}


def _drawn_frest(monkeypatch, argv):
  """Runs `python -m freqjax.visualize frest ARGV` in-process; `plot_frest`'s arguments."""
  drawn = {}
  draw = frest.plot_frest

  def spy(params, out_path, pass_rates, title):
    drawn.update(params=params, out_path=out_path, pass_rates=pass_rates, title=title)
    return draw(params, out_path, pass_rates, title=title)

  monkeypatch.setattr(frest, "plot_frest", spy)
  assert visualize_main.main(["frest", *argv]) == 0
  return drawn


def _first_training_batch(run, batch_size):
  """The run's first `batch_size` training samples as the training pipeline feeds them, in
  its stream."""
  config = run["config"]
  batch = next(pipeline.train_batches(run["dataset"], batch_size, config.seed, num_devices=1,
                                      process_index=0, process_count=1))
  return streams.to_stream(jnp.asarray(batch["x"][0]), config.data.stream)


def _expected_pass_rates(run, step, x):
  """numpy pass rates of every FreST branch, from the blocks' outputs on `x`."""
  variables = run["variables"][step]
  outputs = jax.jit(lambda v, x: run["encoder"].apply(
      v, x, train=False, mutable=["intermediates"],
      capture_intermediates=lambda m, _: m.name in ("block8", "block9"))[1])(
          variables, x)["intermediates"]
  return {f"frest{b}/{branch}": _numpy_pass_rates(outputs[f"block{b}"]["__call__"][0],
                                                  variables["params"][f"frest{b}"], branch)
          for b in (8, 9) for branch in ("fres", "fret")}


def test_frest_cli_draws_the_latest_checkpoint_on_the_run_s_first_samples(
    frest_run, monkeypatch, capsys):
  workdir = frest_run["workdir"]
  drawn = _drawn_frest(monkeypatch, ["--workdir", str(workdir), "--batch", "8"])
  out = workdir / "frest.png"
  assert capsys.readouterr().out.strip() == str(out)
  assert "(step 2)" in drawn["title"] and "first 8 training samples" in drawn["title"]
  jax.tree.map(np.testing.assert_array_equal, drawn["params"],
               frest_run["variables"][2]["params"])
  expected = _expected_pass_rates(frest_run, 2, _first_training_batch(frest_run, 8))
  assert list(drawn["pass_rates"]) == list(expected)
  for name, rates in expected.items():
    np.testing.assert_allclose(drawn["pass_rates"][name], rates, atol=1e-6, err_msg=name)
  assert any(0 < r < 1 for rates in expected.values() for r in rates)
  # 4 filters (2 blocks x FreS, FreT), a row of 2 panels each: 2 x 5 in by 4 x 2.6 + 0.5 in.
  with Image.open(out) as image:
    assert image.format == "PNG" and image.size == (1000, 1090)
  assert out.stat().st_size > 20_000


def test_frest_cli_step_and_out(frest_run, monkeypatch, tmp_path):
  out = tmp_path / "pictures" / "step1.png"
  drawn = _drawn_frest(monkeypatch, ["--workdir", str(frest_run["workdir"]), "--step", "1",
                                     "--batch", "5", "--out", str(out)])
  assert drawn["out_path"] == str(out) and out.exists()
  assert "(step 1)" in drawn["title"]
  jax.tree.map(np.testing.assert_array_equal, drawn["params"],
               frest_run["variables"][1]["params"])
  expected = _expected_pass_rates(frest_run, 1, _first_training_batch(frest_run, 5))
  for name, rates in expected.items():
    np.testing.assert_allclose(drawn["pass_rates"][name], rates, atol=1e-6, err_msg=name)
  later = _expected_pass_rates(frest_run, 2, _first_training_batch(frest_run, 5))
  assert any(not np.allclose(expected[name], later[name]) for name in expected)


def test_frest_cli_errors_are_one_line(frest_run, data_dir, tmp_path, capsys):
  def error_of(workdir, *flags):
    assert visualize_main.main(["frest", "--workdir", str(workdir), *flags]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("python -m freqjax.visualize: error: ")
    return lines[0]

  assert f"{tmp_path / 'absent'}: no such workdir" in error_of(tmp_path / "absent")
  assert f"{tmp_path / 'config.json'} is missing" in error_of(tmp_path)
  resume.write_config(_frest_config(data_dir, frest_blocks=()), str(tmp_path), 0)
  assert "the run has no FreST blocks (model.frest_blocks=()" in error_of(tmp_path)
  resume.write_config(_frest_config(data_dir), str(tmp_path), 0)
  assert f"{tmp_path}: no checkpoint under" in error_of(tmp_path)
  assert "has no checkpoint of step 7; its steps are 1, 2" in error_of(
      frest_run["workdir"], "--step", "7")
  assert not list(tmp_path.glob("*.png"))


_IMPORT_CHECK = """
import importlib, sys
try:
  importlib.import_module("freqjax.pretraining.loop")
except ModuleNotFoundError:
  importlib.import_module("freqjax.pretrain")
loaded = sorted(m for m in sys.modules
                if m.split(".")[0] in ("matplotlib", "sklearn") or m.startswith("freqjax.visualize"))
print(",".join(loaded))
"""

_PICTURE_IMPORTS = """
import sys
from freqjax.visualize import curves, embedding, frest, skeleton
import freqjax.visualize.__main__
print(",".join(sorted(m for m in sys.modules if m.startswith(
    ("freqjax.pretrain", "freqjax.evaluation.run", "freqjax.losses", "train")))))
"""


@pytest.mark.parametrize("script", [_IMPORT_CHECK, _PICTURE_IMPORTS],
                         ids=["training_imports_no_pictures", "pictures_import_no_training"])
def test_import_separation(script):
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, check=True)
  assert result.stdout.strip() == ""
