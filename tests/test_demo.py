"""`python -m freqjax.demo` wired end to end, at the scale of the test config."""
import json
import os
import types

import numpy as np
import pytest

from configs import eval as eval_configs
from configs import pretrain as pretrain_configs
from freqjax import demo
from freqjax.evaluation import run as evaluate
from freqjax.text import descriptions, embed
from helpers.fakes import FakeTextEncoder


def test_summary_table_states_both_encoders_chance_and_margins():
  def result(top1, name, norm=None):
    # The fields of an `Evaluation` and of its record that the summary reads.
    record = types.SimpleNamespace(k=20) if norm is None else types.SimpleNamespace(
        train_feature_norm_mean=norm)
    return types.SimpleNamespace(num_test=10, checkpoint_step=48, test_top1=top1,
                                 record=record, report_dir=f"runs/demo/eval/{name}")

  outcome = {"pretrained": {"linear": result(60.0, "linear", 2.5),
                            "linear_std": result(90.0, "linear_std", 8.0),
                            "knn": result(70.0, "knn")},
             "random_init": {"linear": result(50.0, "linear_random_init", 0.2),
                             "linear_std": result(85.5, "linear_std_random_init", 8.0),
                             "knn": result(80.0, "knn_random_init")},
             "chance": 100 / 14, "seconds": {"data": 1.0, "pretrain": 100.0}}
  text = demo.format_summary(outcome, 200.0)
  assert "checkpoint step 48" in text
  assert "  linear           60.00 %      50.00 %   7.14 %            +10.00 pts" in text
  assert "  linear_std       90.00 %      85.50 %   7.14 %             +4.50 pts" in text
  assert "  knn              70.00 %      80.00 %   7.14 %            -10.00 pts" in text
  assert "Mean feature norm 2.50 (pretrained) vs 0.20 (random-init)" in text
  assert "linear:     the SkeletonCLR recipe" in text and "not scale-invariant" in text
  assert "linear_std: the same probe on features standardised" in text
  assert "knn:        weighted cosine kNN (k=20); scale-invariant" in text
  assert ("Reports in runs/demo/eval/: linear, linear_std, knn, linear_random_init, "
          "linear_std_random_init, knn_random_init" in text)
  assert "Total 3.3 min (data 1 s, pretrain 100 s)" in text
  assert "sees the labels" in text


def test_demo_configs_seed_everything_and_add_a_scale_invariant_probe():
  config, (linear, standardized, knn) = demo.demo_configs(eval_configs, pretrain_configs)
  assert config.seed == 0 and config.data.path == "data/synthetic/xperformer_tilted"
  assert config.text.path == "data/synthetic/text.npz"
  assert evaluate.report_name(linear) == "linear" and not linear.linear.standardize
  assert evaluate.report_name(standardized) == "linear_std" and standardized.linear.standardize
  # Otherwise the very same probe as the recipe.
  assert standardized.linear.to_dict() == dict(linear.linear.to_dict(), standardize=True)
  assert evaluate.report_name(knn) == "knn" and knn.knn.k == 20
  config, evals = demo.demo_configs(eval_configs, pretrain_configs, seed=3)
  assert config.seed == 3 and all(c.seed == 3 for c in evals)
  assert config.data.path == "data/synthetic/xperformer_tilted_seed3"
  assert config.text.path == "data/synthetic/text_seed3.npz"


def test_existing_data_of_other_settings_are_refused(tmp_path):
  config = pretrain_configs.get_config("demo")
  config.data.path = str(tmp_path / "data")
  config.text.path = ""
  os.makedirs(config.data.path)
  np.save(os.path.join(config.data.path, "train_position.npy"), np.zeros(1))
  manifest = {"seed": 0, "num_samples": 2100, **demo.GENERATION}
  with open(os.path.join(config.data.path, "manifest.json"), "w") as f:
    json.dump(dict(manifest, elevation_degrees=0.0), f)
  with pytest.raises(demo.DemoError, match=r"elevation_degrees 0.0 \(wanted 25.0\).*Delete"):
    demo.prepare_data(config, log=lambda line: None)
  with open(os.path.join(config.data.path, "manifest.json"), "w") as f:
    json.dump(manifest, f)
  lines = []
  demo.prepare_data(config, log=lines.append)
  assert lines == [f"[data] using {config.data.path}"]
  config.seed = 1
  with pytest.raises(demo.DemoError, match=r"seed 0 \(wanted 1\)"):
    demo.prepare_data(config, log=lambda line: None)


def test_a_workdir_of_another_config_is_refused(tmp_path):
  config = pretrain_configs.get_config("demo")
  workdir = str(tmp_path)
  demo.check_workdir(config, workdir)  # no run yet
  with open(tmp_path / "config.json", "w") as f:
    f.write(config.to_json_best_effort(indent=2))
  demo.check_workdir(config, workdir)  # the same config: pretraining resumes
  # A run from before a host-side field existed, or with another value of one, trains the
  # same state: it resumes too.
  host_side = config.copy_and_resolve_references()
  host_side.data.loader_threads, host_side.log_every_steps = 1, 3
  demo.check_workdir(host_side, workdir)
  del host_side.data["loader_threads"]
  demo.check_workdir(host_side, workdir)
  other = config.copy_and_resolve_references()
  other.moco.queue_size = 1024
  with pytest.raises(demo.DemoError,
                     match=r"config\.json: moco\.queue_size: saved 256, now 1024\).*Delete"):
    demo.check_workdir(other, workdir)


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
  with open(os.path.join(config.data.path, "manifest.json")) as f:
    manifest = json.load(f)
  assert manifest["elevation_degrees"] == manifest["roll_degrees"] == 25.0  # tilted cameras
  assert embedded == [(config.text.path, config.seed)]
  assert any("RANDOMLY INITIALISED" in line for line in lines)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    steps = [json.loads(line)["step"] for line in f]
  pre, rnd = outcome["pretrained"], outcome["random_init"]
  assert sorted(pre) == sorted(rnd) == ["knn", "linear"]
  assert outcome["chance"] == pytest.approx(100 / 14)
  for name in ("linear", "knn"):
    assert pre[name].checkpoint_step == steps[-1] > 0
    assert rnd[name].checkpoint_step is None
    assert rnd[name].run_record.encoder.startswith("random init")
    assert pre[name].report_dir == os.path.join(workdir, "eval", name)
    assert rnd[name].report_dir == os.path.join(workdir, "eval", f"{name}_random_init")
    assert pre[name].num_test == rnd[name].num_test > 0
    for result in (pre[name], rnd[name]):
      logits = np.load(os.path.join(result.report_dir, "test_logits.npy"))
      assert logits.shape == (result.num_test, 14)
  assert "random-init" in demo.format_summary(outcome, 1.0)

  # Again: data and text are reused, pretraining is complete (no new step), the reports
  # are rewritten and the earlier ones kept.
  lines.clear()
  again = demo.run(config, [linear, knn], workdir, num_samples=84, log=lines.append)
  assert len(embedded) == 1 and any(line.startswith("[data] using") for line in lines)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    assert len(f.readlines()) == len(steps)
  assert again["pretrained"]["linear"].test_top1 == pytest.approx(pre["linear"].test_top1)
  assert os.listdir(os.path.join(pre["linear"].report_dir, "history"))
