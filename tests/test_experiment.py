"""`python -m freqjax.experiment`: plans, tables, published numbers, and a tiny run end to end."""
import json
import os
import re

import pytest
import tqdm

from configs import eval as eval_configs
from configs import pretrain as pretrain_configs
from freqjax import experiment
from freqjax.evaluation import report
from freqjax.evaluation import run as evaluation
from freqjax.pretraining import resume
from freqjax.text import descriptions, embed
from helpers.fakes import FakeTextEncoder


def _plan(**kwargs):
  kwargs.setdefault("protocols", "linear,knn")
  kwargs.setdefault("benchmark", "ntu60_xsub")
  return experiment.make_plan(pretrain_configs, eval_configs, **kwargs)


# The numbers as the papers print them (CrosSCLR's Table for SkeletonCLR, AimCLR's, CMD's),
# typed here independently of the module's table.
@pytest.mark.parametrize("method,benchmark,column,expected", [
    ("SkeletonCLR", "ntu60_xsub", "joint", 68.3), ("SkeletonCLR", "ntu120_xset", "3s", 62.6),
    ("AimCLR", "ntu60_xview", "joint", 79.7), ("AimCLR", "ntu120_xsub", "3s", 68.2),
    ("CMD", "ntu120_xset", "joint", 71.5), ("CMD", "ntu60_xview", "3s", 90.9),
])
def test_published_numbers(method, benchmark, column, expected):
  assert experiment.published(method, benchmark, "linear", column) == expected


def test_unreported_or_unchecked_published_cells_are_empty():
  assert experiment.published("AimCLR", "ntu60_xsub", "linear", "bone") is None
  assert experiment.published("AimCLR", "ntu60_xsub", "knn", "joint") is None
  assert experiment.published("AimCLR", "ntu60_xsub", "semi1", "joint") is None
  assert experiment.published("AimCLR", "pku1_xsub", "linear", "joint") is None
  for column in ("joint", "3s"):
    assert experiment.published("C2VL", "ntu60_xsub", "linear", column) is None


def test_cells_show_mean_and_sample_std_over_seeds():
  assert experiment.format_cell(experiment.mean_std([61.24])) == "61.2"
  # mean 61, sample std sqrt(((60-61)^2 + (62-61)^2) / 1) = 1.414
  assert experiment.format_cell(experiment.mean_std([60.0, 62.0])) == "61.0 ± 1.4"
  # three seeds: mean 50, sample std sqrt((4 + 0 + 4) / 2) = 2
  assert experiment.format_cell(experiment.mean_std([48.0, 50.0, 52.0])) == "50.0 ± 2.0"
  assert experiment.format_cell(None) == ""


def _fake_records(plan, top1):
  """Records as run_experiment gathers them, every top-1 from `top1(variant, seed, col)`."""
  records = {}
  for run in plan.runs:
    seed = records.setdefault(run.variant, {}).setdefault(
        f"seed{run.seed}", {"streams": {}, "ensemble": {}})
    seed["streams"][run.stream] = {
        "pretrain": {"config_hash": experiment.config_hash(run.pretrain_config),
                     "checkpoint_step": 320, "seconds": 186.0},
        "eval": {p: {"top1": top1(run.variant, run.seed, run.stream), "seconds": 12.0}
                 for p in plan.protocols}}
    seed["ensemble"] = {p: {"top1": top1(run.variant, run.seed, "fused")}
                        for p in plan.protocols}
  return records


def _row(markdown, start):
  return next(line for line in markdown.splitlines() if line.startswith(start))


def test_benchmark_row_sits_beside_the_published_rows():
  plan = _plan(seeds="0,1")
  value = {"joint": 60.0, "bone": 58.0, "motion": 50.0, "fused": 66.0}
  results = experiment.summarize(plan, _fake_records(
      plan, lambda v, s, c: value[c] + 2 * s), 100.0)
  text = experiment.format_markdown(results)
  assert results["columns"] == ["joint", "bone", "motion", "3s"]
  header = _row(text, "| Method")
  assert header == ("| Method | linear joint | linear bone | linear motion | linear 3s | "
                    "knn joint | knn bone | knn motion | knn 3s |")
  # The published joint and 3s linear numbers; nothing where the paper has none.
  assert _row(text, "| AimCLR").endswith("| 74.3 |  |  | 78.9 |  |  |  |  |")
  assert _row(text, "| SkeletonCLR").endswith("| 68.3 |  |  | 75.0 |  |  |  |  |")
  assert _row(text, "| C2VL").endswith("|  |  |  |  |  |  |  |  |")
  # Seeds 0 and 1: values v and v + 2, mean v + 1, sample std sqrt(2).
  mica = _row(text, "| **MICA")
  assert mica.endswith("| 61.0 ± 1.4 | 59.0 ± 1.4 | 51.0 ± 1.4 | 67.0 ± 1.4 "
                       "| 61.0 ± 1.4 | 59.0 ± 1.4 | 51.0 ± 1.4 | 67.0 ± 1.4 |")
  assert "## Ablation" not in text  # one variant
  assert "| mica | seed1 | motion | `" in text and "| 320 | 3.1 min | 12 s | 12 s |" in text
  # The fake ensembles record no time, so the sum of the stages' times is unknown.
  assert results["stage_seconds"] is None and "took ? when they ran" in text


def test_a_two_stream_ensemble_is_not_compared_with_published_3s_numbers():
  plan = _plan(streams="joint,bone", protocols="linear")
  results = experiment.summarize(plan, _fake_records(plan, lambda v, s, c: 50.0), 1.0)
  assert results["columns"] == ["joint", "bone", "2s"]
  assert results["published"]["AimCLR"]["linear"] == {"joint": 74.3, "bone": None, "2s": None}


def test_ablation_table_has_a_row_per_variant_with_its_overrides_and_hash():
  plan = _plan(protocols="knn", ablate="no_fm,moco,small:moco.queue_size=64,fm.tau_s=0.2")
  assert [v.name for v in plan.variants] == ["mica", "no_fm", "moco", "small"]
  top1 = {"mica": 70.0, "no_fm": 65.0, "moco": 60.0, "small": 68.0}
  results = experiment.summarize(plan, _fake_records(plan, lambda v, s, c: top1[v]), 1.0)
  text = experiment.format_markdown(results)
  table = text.split("## Ablation")[1].split("## Runs")[0]
  rows = [line for line in table.splitlines() if line.startswith("| ")]
  assert rows[0] == ("| Variant | overrides | config | knn joint | knn bone | knn motion | "
                     "knn 3s |")
  assert [row.split(" | ")[0] for row in rows[1:]] == ["| mica", "| no_fm", "| moco", "| small"]
  assert rows[2].startswith("| no_fm | `fm.weight=0.0` | `")
  assert rows[2].endswith("| 65.0 | 65.0 | 65.0 | 65.0 |")
  assert "`model.frest_blocks=()`" in rows[3]
  assert "`moco.queue_size=64`, `fm.tau_s=0.2`" in rows[4]
  hashes = [v["config_hash"] for v in results["variants"]]
  assert len(set(hashes)) == 4 and all(re.fullmatch(r"[0-9a-f]{12}", h) for h in hashes)


def test_variants_and_sets_reach_the_configs():
  plan = _plan(protocols="linear_std,semi1", streams="bone", seeds="3",
               ablate="no_frest,no_text,moco", sets=["optim.epochs=2", "eval.linear.epochs=7"])
  by_variant = {run.variant: run for run in plan.runs}
  assert by_variant["mica"].pretrain_config.model.frest_blocks == (9,)
  assert by_variant["no_frest"].pretrain_config.model.frest_blocks == ()
  no_text = by_variant["no_text"].pretrain_config  # FreST kept, both text losses off
  assert (no_text.fm.weight, no_text.harmonizer.weight, no_text.model.frest_blocks) == (
      0.0, 0.0, (9,))
  moco = by_variant["moco"].pretrain_config
  assert (moco.fm.weight, moco.harmonizer.weight, moco.model.frest_blocks) == (0.0, 0.0, ())
  for run in plan.runs:
    assert run.pretrain_config.data.stream == "bone" and run.pretrain_config.seed == 3
    assert run.pretrain_config.optim.epochs == 2.0
    assert run.pretrain_config.data.path == "data/ntu60/xsub"
    assert run.eval_configs["linear_std"].linear.standardize
    assert run.eval_configs["linear_std"].linear.epochs == 7
    assert run.eval_configs["semi1"].finetune.label_fraction == 0.01
    assert all(c.seed == 3 for c in run.eval_configs.values())
  assert by_variant["moco"].workdir == os.path.join("experiments", "ntu60_xsub", "moco",
                                                    "seed3", "bone")


@pytest.mark.parametrize("kwargs,message", [
    ({"benchmark": "ntu60_xset"}, r"--benchmark 'ntu60_xset': use one of .*ntu120_xset"),
    ({"protocols": "linear,svm"}, r"unknown protocol 'svm'"),
    ({"streams": "joint,velocity"}, r"unknown stream 'velocity'"),
    ({"seeds": "0,a"}, r"--seeds '0,a': expected integers"),
    ({"ablate": "no_frets"}, r"--ablate 'no_frets': unknown ablation; use one of no_frest"),
    ({"ablate": "x:fm.wieght=0"}, r"--ablate x:fm\.wieght: no such config field"),
    ({"sets": ["model.frest_blocks=frest"]},
     r"--set model.frest_blocks=\(.frest.,\): expected a tuple of int"),
    ({"sets": ["moco.queue_size=0.5"]}, r"--set moco.queue_size=0.5: .*"),
    ({"sets": ["fm"]}, r"--set 'fm': expected key=value"),
    ({"sets": ["eval.knn.kk=3"]}, r"--set eval\.knn\.kk: no such config field"),
    ({"config_variant": "test"}, r"--config-variant is for --synthetic"),
])
def test_bad_flags_are_one_line_errors_naming_the_flag(kwargs, message):
  with pytest.raises(experiment.ExperimentError, match=message):
    _plan(**kwargs)


def test_the_command_line_reports_a_bad_flag_in_one_line(capsys):
  assert experiment.main(["--benchmark", "ntu60_xset", "--protocols", "linear"]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1
  assert err.startswith("python -m freqjax.experiment: error: --benchmark 'ntu60_xset'")


def test_a_workdir_pretrained_with_another_config_is_refused_naming_the_field(tmp_path):
  run = _plan(root=str(tmp_path), streams="joint", protocols="knn").runs[0]
  experiment._check_pretraining(run)  # nothing there yet
  os.makedirs(run.workdir)
  other = run.pretrain_config.copy_and_resolve_references()
  other.moco.temperature = 0.07
  with open(os.path.join(run.workdir, "config.json"), "w") as f:
    f.write(other.to_json_best_effort(indent=2))
  with pytest.raises(experiment.ExperimentError,
                     match=r"moco\.temperature: saved 0\.07, now 0\.2.*--name"):
    experiment._check_pretraining(run)
  with open(os.path.join(run.workdir, "config.json"), "w") as f:
    f.write(run.pretrain_config.to_json_best_effort(indent=2))
  experiment._check_pretraining(run)  # the same config: resumed or skipped


def test_a_report_of_another_eval_config_or_checkpoint_is_refused_naming_both(tmp_path):
  plan = _plan(root=str(tmp_path), streams="joint", protocols="knn")
  run = plan.runs[0]
  os.makedirs(os.path.join(run.workdir, "checkpoints"))  # what `resolve` looks for
  with open(os.path.join(run.workdir, "config.json"), "w") as f:
    f.write(run.pretrain_config.to_json_best_effort(indent=2))
  wanted = evaluation.resolve(run.eval_configs["knn"], run.workdir).config
  out_dir = report.report_dir(run.workdir, "knn")
  os.makedirs(out_dir)

  def write_report(config, step):
    with open(out_dir / "results.json", "w") as f:
      json.dump({"config": experiment.as_json(config), "checkpoint_step": step,
                 "test_top1": 61.0, "test_top5": 90.0}, f)

  other = wanted.copy_and_resolve_references()
  other.knn.k += 1
  write_report(other, 3)
  runner = experiment._Runner(plan, {}, log=lambda line: None, bar=tqdm.tqdm(disable=True))
  k = wanted.knn.k
  with pytest.raises(experiment.ExperimentError,
                     match=rf"knn/results\.json: .*\(checkpoint_step: saved 3, now 4; knn\.k: "
                     rf"saved {k + 1}, now {k}\)\. Use another --name"):
    runner.evaluate(run, "knn", 4)
  write_report(wanted, 4)
  assert runner.evaluate(run, "knn", 4)["skipped"]  # the same config and step: reused


def test_config_hash_is_stable_and_sees_every_field():
  a = pretrain_configs.get_config("test")
  b = pretrain_configs.get_config("test")
  assert experiment.config_hash(a) == experiment.config_hash(b)
  # Key order does not matter, values do.
  assert experiment.config_hash({"x": 1, "y": {"z": 2}}) == experiment.config_hash(
      {"y": {"z": 2}, "x": 1})
  b.fm.tau_s = 0.11
  assert experiment.config_hash(a) != experiment.config_hash(b)
  assert resume.compare_configs(resume.flatten(a.to_dict()), resume.flatten(
      b.to_dict())).fields == {"fm.tau_s": (0.1, 0.11)}


def _tiny_plan(tmp_path, **kwargs):
  data = tmp_path / "data"
  sets = [f"data.path={data / 'synthetic'}", f"text.path={data / 'text.npz'}",
          "eval.linear.epochs=2", "eval.linear.minival_size=0", "eval.features.batch_size=32",
          "eval.knn.k=5", *kwargs.pop("sets", [])]
  return experiment.make_plan(
      pretrain_configs, eval_configs, benchmark=None, synthetic=True, config_variant="test",
      protocols="knn,linear_std", streams="joint,bone", seeds="0", ablate="no_fm",
      sets=sets, root=str(tmp_path / "experiments"), synthetic_samples=84, **kwargs)


@pytest.mark.slow
def test_synthetic_row_and_ablation_end_to_end_then_resume_and_refuse(tmp_path, monkeypatch):
  monkeypatch.setattr(embed, "embed_synthetic", lambda path, seed=0: embed.embed_descriptions(
      descriptions.synthetic_descriptions(), FakeTextEncoder(), path))
  plan = _tiny_plan(tmp_path)
  assert plan.name == "synthetic_test"
  lines = []
  results = experiment.run_experiment(plan, log=lines.append)

  root = tmp_path / "experiments" / "synthetic_test"
  stage_lines = [line for line in lines if re.match(r"\[(pretrain|knn|linear_std)", line)]
  # 2 variants x 2 streams x (pretraining + 2 protocols) + 2 variants x 2 ensembles.
  assert len(stage_lines) == 16, lines
  assert any(re.fullmatch(r"\[pretrain\] no_fm/seed0/bone: \d+ steps in (\d+ s|\d+\.\d min)", line)
             for line in lines), lines
  assert any(re.fullmatch(
      r"\[knn\] mica/seed0/joint: top-1 \d+\.\d % \((\d+ s|\d+\.\d min)\)", line)
             for line in lines), lines
  markdown = (root / "results.md").read_text()
  on_disk = json.loads((root / "results.json").read_text())
  assert on_disk["rows"] == json.loads(json.dumps(results["rows"]))
  assert results["columns"] == ["joint", "bone", "2s"]
  mica = _row(markdown, "| **MICA")
  cells = [c.strip() for c in mica.split("|")[2:-1]]
  expected = [results["rows"]["mica"][p][c]["mean"] for p in ("knn", "linear_std")
              for c in ("joint", "bone", "2s")]
  assert cells == [f"{v:.1f}" for v in expected]
  assert "SkeletonCLR" not in markdown  # no published numbers for synthetic data
  ablation = markdown.split("## Ablation")[1]
  assert _row(ablation, "| no_fm").startswith("| no_fm | `fm.weight=0.0` | `")
  for variant in ("mica", "no_fm"):
    for stream in ("joint", "bone"):
      run = on_disk["runs"][variant]["seed0"]["streams"][stream]
      assert run["pretrain"]["checkpoint_step"] > 0 and run["pretrain"]["seconds"] > 0
      assert re.fullmatch(r"[0-9a-f]{12}", run["pretrain"]["config_hash"])
      for protocol in ("knn", "linear_std"):
        report = run["eval"][protocol]
        assert report["checkpoint_step"] == run["pretrain"]["checkpoint_step"]
        assert report["seconds"] > 0 and os.path.isdir(report["report_dir"])
    fused = on_disk["runs"][variant]["seed0"]["ensemble"]["knn"]
    assert fused["top1"] == on_disk["rows"][variant]["knn"]["2s"]["mean"]
    assert os.path.exists(os.path.join(fused["report_dir"], "results.json"))
  assert (on_disk["runs"]["mica"]["seed0"]["streams"]["joint"]["pretrain"]["config_hash"]
          != on_disk["runs"]["no_fm"]["seed0"]["streams"]["joint"]["pretrain"]["config_hash"])
  assert on_disk["stage_seconds"] > on_disk["runs"]["mica"]["seed0"]["streams"]["joint"][
      "pretrain"]["seconds"]

  # Again: every stage is skipped, nothing is rewritten but the summary.
  watched = [p for p in root.rglob("*") if p.is_file() and not (
      p.parent == root and p.name in ("results.md", "results.json", "stages.json"))]
  before = {p: p.stat().st_mtime_ns for p in watched}
  lines.clear()
  again = experiment.run_experiment(_tiny_plan(tmp_path), log=lines.append)
  skipped = [line for line in lines if line.startswith("[skip]")]
  assert len(skipped) == 16, lines
  assert {p: p.stat().st_mtime_ns for p in watched} == before
  assert again["rows"] == results["rows"]
  # Times of skipped stages are the ones measured when they ran.
  assert (again["runs"]["mica"]["seed0"]["streams"]["bone"]["pretrain"]["seconds"]
          == results["runs"]["mica"]["seed0"]["streams"]["bone"]["pretrain"]["seconds"])

  # A changed pretraining field is refused before anything runs, naming field and values.
  with pytest.raises(experiment.ExperimentError,
                     match=r"config\.json: .*moco\.temperature: saved 0\.2, now 0\.3"):
    experiment.run_experiment(_tiny_plan(tmp_path, sets=["moco.temperature=0.3"]),
                              log=lines.append)
  # So is a changed eval field, by the report it would overwrite.
  with pytest.raises(experiment.ExperimentError,
                     match=r"knn/results\.json: .*knn\.k: saved 5, now 6"):
    experiment.run_experiment(_tiny_plan(tmp_path, sets=["eval.knn.k=6"]), log=lines.append)
  assert {p: p.stat().st_mtime_ns for p in watched} == before
