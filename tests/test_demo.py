"""`python -m freqjax.demo` wired end to end, at the scale of the test config."""
import json
import os

import numpy as np
import pytest

from configs import eval as eval_configs
from configs import pretrain as pretrain_configs
from freqjax import demo
from freqjax.text import descriptions, embed
from test_evaluate import FakeTextEncoder


def test_summary_table_states_both_encoders_chance_and_margins():
  def result(top1, name, norm=None):
    extra = {"k": 20} if norm is None else {"train_feature_norm_mean": norm}
    return {"num_test": 10, "checkpoint_step": 48, "test_top1": top1, "extra": extra,
            "report_dir": f"runs/demo/eval/{name}"}

  outcome = {"pretrained": {"linear": result(60.0, "linear", 2.5), "knn": result(70.0, "knn")},
             "random_init": {"linear": result(50.0, "linear_random_init", 0.2),
                             "knn": result(80.0, "knn_random_init")},
             "chance": 100 / 14, "seconds": {"data": 1.0, "pretrain": 100.0}}
  text = demo.format_summary(outcome, 200.0)
  assert "checkpoint step 48" in text
  assert "  linear           60.00 %      50.00 %   7.14 %            +10.00 pts" in text
  assert "  knn              70.00 %      80.00 %   7.14 %            -10.00 pts" in text
  assert "Mean feature norm 2.50 (pretrained) vs 0.20 (random-init)" in text
  assert "weighted cosine kNN (k=20)" in text
  assert ("Reports in runs/demo/eval/: linear, knn, linear_random_init, knn_random_init"
          in text)
  assert "Total 3.3 min (data 1 s, pretrain 100 s)" in text


@pytest.mark.slow
def test_demo_generates_pretrains_evaluates_and_resumes(tmp_path, monkeypatch):
  embedded = []

  def fake_embed_synthetic(path, seed=0):
    # The real one runs a random-init CLIP text model (seconds); the wiring is the point.
    embedded.append((path, seed))
    return embed.embed_descriptions(descriptions.synthetic_descriptions(), FakeTextEncoder(),
                                    path)

  monkeypatch.setattr(embed, "embed_synthetic", fake_embed_synthetic)
  config = pretrain_configs.get_config("test")
  config.data.path = str(tmp_path / "synthetic" / "xperformer")
  config.text.path = str(tmp_path / "synthetic" / "text.npz")
  config.optim.epochs = 2.0
  linear, knn = eval_configs.get_config("linear"), eval_configs.get_config("knn")
  linear.linear.epochs = 3
  linear.features.batch_size = knn.features.batch_size = 16
  knn.knn.k = 5
  workdir = str(tmp_path / "run")
  lines = []

  outcome = demo.run(config, [linear, knn], workdir, num_samples=84, log=lines.append)
  assert os.path.exists(os.path.join(config.data.path, "train_position.npy"))
  assert embedded == [(config.text.path, config.seed)]
  assert any("RANDOMLY INITIALISED" in line for line in lines)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [json.loads(line)["step"] for line in f]
  pre, rnd = outcome["pretrained"], outcome["random_init"]
  assert sorted(pre) == sorted(rnd) == ["knn", "linear"]
  assert outcome["chance"] == pytest.approx(100 / 14)
  for name in ("linear", "knn"):
    assert pre[name]["checkpoint_step"] == steps[-1] > 0
    assert rnd[name]["checkpoint_step"] is None
    assert rnd[name]["encoder"].startswith("random init")
    assert pre[name]["report_dir"] == os.path.join(workdir, "eval", name)
    assert rnd[name]["report_dir"] == os.path.join(workdir, "eval", f"{name}_random_init")
    assert pre[name]["num_test"] == rnd[name]["num_test"] > 0
    for result in (pre[name], rnd[name]):
      logits = np.load(os.path.join(result["report_dir"], "test_logits.npy"))
      assert logits.shape == (result["num_test"], 14)
  assert "random-init" in demo.format_summary(outcome, 1.0)

  # Again: data and text are reused, pretraining is complete (no new step), the reports
  # are rewritten and the earlier ones kept.
  lines.clear()
  again = demo.run(config, [linear, knn], workdir, num_samples=84, log=lines.append)
  assert len(embedded) == 1 and any(line.startswith("[data] using") for line in lines)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert len(f.readlines()) == len(steps)
  assert again["pretrained"]["linear"]["test_top1"] == pytest.approx(pre["linear"]["test_top1"])
  assert os.listdir(os.path.join(pre["linear"]["report_dir"], "history"))
