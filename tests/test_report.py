"""Metrics against numpy references, and the report folder a person reads."""
import json

import ml_collections
import numpy as np
import pytest
from matplotlib import image as mpimg

from freqjax.evaluation import metrics
from freqjax.evaluation import report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_topk_accuracy_matches_an_argsort_reference():
  rng = np.random.default_rng(0)
  scores, labels = rng.normal(size=(200, 12)), rng.integers(0, 12, size=200)
  for k in (1, 3, 5):
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    expected = 100 * np.mean([l in t for l, t in zip(labels, top)])
    assert metrics.topk_accuracy(scores, labels, k) == pytest.approx(expected)
  assert metrics.topk_accuracies(scores, labels, (1,))["top1"] == pytest.approx(
      100 * np.mean(np.argmax(scores, 1) == labels))


def test_ties_follow_argmax_so_constant_scores_score_chance_not_100():
  labels = np.array([0, 1, 2, 3, 0, 1, 2, 3])
  scores = np.zeros((8, 4))
  assert metrics.topk_accuracy(scores, labels, 1) == 25.0  # argmax is class 0
  assert metrics.topk_accuracy(scores, labels, 2) == 50.0  # classes 0 and 1


def test_confusion_per_class_and_most_confused_pairs_against_loops():
  rng = np.random.default_rng(1)
  labels, preds = rng.integers(0, 6, size=300), rng.integers(0, 6, size=300)
  labels[labels == 5] = 4  # class 5 never occurs as a true class
  cm = metrics.confusion_matrix(labels, preds, 6)
  expected = np.zeros((6, 6), int)
  for l, p in zip(labels, preds):
    expected[l, p] += 1
  np.testing.assert_array_equal(cm, expected)
  per_class = metrics.per_class_accuracy(cm)
  for c in range(5):
    assert per_class[c] == pytest.approx(100 * np.mean(preds[labels == c] == c))
  assert np.isnan(per_class[5])

  names = [f"action {i}" for i in range(6)]
  pairs = metrics.most_confused_pairs(cm, names, n=10)
  brute = sorted(((expected[a, b] + expected[b, a], a, b) for a in range(6)
                  for b in range(a + 1, 6)), key=lambda t: (-t[0], t[1], t[2]))[:10]
  assert [(p["total"], p["a"], p["b"]) for p in pairs] == brute
  assert pairs[0]["a_to_b"] == expected[pairs[0]["a"], pairs[0]["b"]]
  assert pairs[0]["name_b"] == names[pairs[0]["b"]]


def _logits_with_one_confusion(num_classes, per_class, rng):
  """Logits that are right except that class 1 is often taken for class 0 and back."""
  labels = np.repeat(np.arange(num_classes), per_class)
  logits = rng.normal(size=(labels.size, num_classes)).astype(np.float32)
  logits[np.arange(labels.size), labels] += 4.0
  swap = np.flatnonzero(labels == 1)[:3]
  logits[swap, 0] += 10.0
  logits[np.flatnonzero(labels == 0)[:2], 1] += 10.0
  return logits, labels


def test_report_writes_every_file_and_results_round_trip(tmp_path):
  rng = np.random.default_rng(2)
  names = ["drink water", "eat meal", "brush teeth", "brush hair"] + [
      f"action {i}" for i in range(4, 14)]
  logits, labels = _logits_with_one_confusion(14, 5, rng)
  config = ml_collections.ConfigDict({"eval": {"lr": 3.0, "decay_epochs": (80,)}})
  out = report.report_dir(tmp_path, "linear")
  summary = report.write_report(
      out, protocol="linear", test_logits=logits, test_labels=labels, class_names=names,
      config=config, checkpoint_step=1200,
      extra={"best_test_top1_over_epochs": np.float32(71.5), "curve": np.arange(3),
             "nan": float("nan")})

  assert sorted(p.name for p in out.iterdir()) == sorted(report.REPORT_FILES)
  results = json.loads((out / "results.json").read_text())
  top1 = 100 * np.mean(np.argmax(logits, 1) == labels)
  assert results["test_top1"] == pytest.approx(top1)
  assert results["checkpoint_step"] == 1200 and results["num_test_samples"] == 70
  assert results["config"] == {"eval": {"lr": 3.0, "decay_epochs": [80]}}
  assert results["extra"] == {"best_test_top1_over_epochs": 71.5, "curve": [0, 1, 2],
                              "nan": None}
  assert list(results["per_class_accuracy"]) == names
  assert results["per_class_accuracy"]["eat meal"] == pytest.approx(
      100 * np.mean(np.argmax(logits[labels == 1], 1) == 1))
  assert results["most_confused_pairs"][0]["name_a"] == "drink water"
  assert results["most_confused_pairs"][0]["total"] == 5
  np.testing.assert_array_equal(np.load(out / "test_logits.npy"), logits)
  np.testing.assert_array_equal(np.load(out / "test_labels.npy"), labels)
  assert (out / "confusion_matrix.png").read_bytes()[:8] == PNG_SIGNATURE
  assert mpimg.imread(out / "confusion_matrix.png").ndim == 3
  assert "drink water <-> eat meal  (2, 3)" in (out / "most_confused.txt").read_text()
  assert f"top-1 {top1:.2f} %" in summary and str(out) in summary
  assert "checkpoint step 1200" in summary


def test_rerun_keeps_the_earlier_report_in_history(tmp_path):
  rng = np.random.default_rng(3)
  logits, labels = _logits_with_one_confusion(5, 4, rng)
  out = report.report_dir(tmp_path, "knn")
  report.write_report(out, protocol="knn", test_logits=logits, test_labels=labels)
  first = json.loads((out / "results.json").read_text())
  summary = report.write_report(out, protocol="knn", test_logits=-logits, test_labels=labels)
  (history,) = (out / "history").iterdir()
  assert sorted(p.name for p in history.iterdir()) == sorted(report.REPORT_FILES)
  assert json.loads((history / "results.json").read_text()) == first
  np.testing.assert_array_equal(np.load(out / "test_logits.npy"), -logits)
  assert "moved to" in summary and str(history) in summary


def test_sixty_class_confusion_png(tmp_path):
  rng = np.random.default_rng(4)
  labels = rng.integers(0, 60, size=600)
  cm = metrics.confusion_matrix(labels, rng.integers(0, 60, size=600), 60)
  path = tmp_path / "cm.png"
  report.plot_confusion(cm, [f"a rather long action name {i}" for i in range(60)], path)
  assert path.read_bytes()[:8] == PNG_SIGNATURE
  height, width, _ = mpimg.imread(path).shape
  assert min(height, width) >= 1500  # 60 rows of labels need room


def test_bad_report_inputs(tmp_path):
  with pytest.raises(ValueError, match="plain folder name"):
    report.report_dir(tmp_path, "../linear")
  with pytest.raises(ValueError, match="class_names has 2 entries but there are 3"):
    report.write_report(tmp_path, protocol="x", test_logits=np.zeros((2, 3)),
                        test_labels=np.array([0, 1]), class_names=["a", "b"])
  with pytest.raises(ValueError, match="NaN"):
    report.write_report(tmp_path, protocol="x", test_logits=np.full((2, 3), np.nan),
                        test_labels=np.array([0, 1]))
