"""3-stream ensemble: raw-logit weighted sum against numpy, and the label checks."""
import json

import numpy as np
import pytest

from freqjax.evaluation import ensemble


def _save_run(root, name, logits, labels):
  run = root / name / "eval" / "linear"
  run.mkdir(parents=True)
  np.save(run / "test_logits.npy", logits)
  if labels is not None:
    np.save(run / "test_labels.npy", labels)
  return run / "test_logits.npy"


@pytest.fixture
def three_runs(tmp_path):
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 8, size=50)
  logits = {name: rng.normal(size=(50, 8)).astype(np.float32) for name in
            ("joint", "bone", "motion")}
  logits["joint"][np.arange(50), labels] += 1.5  # the streams are better than chance
  logits["bone"][np.arange(50), labels] += 1.0
  paths = {name: _save_run(tmp_path, name, x, labels) for name, x in logits.items()}
  return logits, labels, paths


def test_fuse_logits_is_the_weighted_sum_of_raw_scores():
  rng = np.random.default_rng(1)
  a, b, c = (rng.normal(size=(6, 4)) for _ in range(3))
  fused = ensemble.fuse_logits({"joint": a, "bone": b, "motion": c},
                               {"joint": 0.6, "bone": 0.6, "motion": 0.4})
  np.testing.assert_allclose(fused, 0.6 * a + 0.6 * b + 0.4 * c, rtol=1e-12)
  with pytest.raises(ensemble.EnsembleInputError, match="same"):
    ensemble.fuse_logits({"joint": a, "bone": b[:5]}, {"joint": 1.0, "bone": 1.0})
  with pytest.raises(ensemble.EnsembleInputError, match="weights are given"):
    ensemble.fuse_logits({"joint": a}, {"bone": 1.0})


def test_cli_reports_each_stream_and_the_fused_accuracy(three_runs, tmp_path, capsys):
  logits, labels, paths = three_runs
  argv = [f"--logits={name}={path}" for name, path in paths.items()]
  assert ensemble.main(argv + ["--out", str(tmp_path / "fused")]) == 0
  out = capsys.readouterr().out
  fused = 0.6 * logits["joint"] + 0.6 * logits["bone"] + 0.4 * logits["motion"]
  top1 = 100 * np.mean(np.argmax(fused, 1) == labels)
  top5 = 100 * np.mean([l in np.argsort(-f)[:5] for f, l in zip(fused, labels)])
  assert f"fused                  top-1 {top1:.2f} %   top-5 {top5:.2f} %" in out
  for name in paths:
    assert f"top-1 {100 * np.mean(np.argmax(logits[name], 1) == labels):.2f} %" in out
  results = json.loads((tmp_path / "fused" / "results.json").read_text())
  assert results["test_top1"] == pytest.approx(top1)
  assert results["config"]["weights"] == {"joint": 0.6, "bone": 0.6, "motion": 0.4}

  # Explicit weights are taken in the order of --logits.
  results, _ = ensemble.run_ensemble(paths, ensemble.parse_weights("1,0,0", list(paths)))
  assert results["fused"]["top1"] == pytest.approx(
      100 * np.mean(np.argmax(logits["joint"], 1) == labels))


def test_mismatched_labels_name_the_file(three_runs, tmp_path, capsys):
  _, labels, paths = three_runs
  shuffled = labels.copy()
  shuffled[[3, 7]] = (labels[[3, 7]] + 1) % 8
  bad_labels = paths["bone"].parent / "test_labels.npy"
  np.save(bad_labels, shuffled)
  with pytest.raises(ensemble.EnsembleInputError,
                     match=rf"{bad_labels}.*2 of 50 labels differ, first at index 3"):
    ensemble.run_ensemble(paths)
  argv = [f"--logits={name}={path}" for name, path in paths.items()]
  assert ensemble.main(argv) == 2
  assert str(bad_labels) in capsys.readouterr().err

  # A separate --labels file is checked against every run's saved labels too.
  external = tmp_path / "labels.npy"
  np.save(external, labels[:40])
  np.save(bad_labels, labels)
  with pytest.raises(ensemble.EnsembleInputError, match="shapes"):
    ensemble.run_ensemble(paths, labels_path=external)


def test_input_errors(tmp_path):
  with pytest.raises(ensemble.EnsembleInputError, match="no default weight.*pass --weights"):
    ensemble.parse_weights(None, ["joint", "accel"])
  with pytest.raises(ensemble.EnsembleInputError, match="2 values but 3 streams"):
    ensemble.parse_weights("0.5,0.5", ["joint", "bone", "motion"])
  with pytest.raises(ensemble.EnsembleInputError, match="NAME=PATH"):
    ensemble.parse_streams(["runs/j/test_logits.npy"])
  with pytest.raises(FileNotFoundError, match="missing.npy"):
    ensemble.run_ensemble({"joint": tmp_path / "missing.npy"})
  path = _save_run(tmp_path, "j", np.zeros((3, 2), np.float32), None)
  with pytest.raises(ensemble.EnsembleInputError, match="pass --labels"):
    ensemble.run_ensemble({"joint": path})
