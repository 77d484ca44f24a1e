"""The import graph points down: each module imports only modules of lower layers.

Layers, lowest first (a module may import a lower layer, or its own package at the same
layer, never a higher one):
0. shared plumbing: `xla_env`, `graph`, `normalize`, `cli`, `optim`, `parallel`
1. `text` (class names, descriptions, CLIP embeddings); `absl_cli` (`cli` for absl programs)
2. `data`, `models`
3. `losses`, `checkpoints`, `visualize` (pictures: never imports training)
4. the evaluation pieces (metrics, kNN, probes, features, fine-tuning, reports)
5. `pretraining` (it may use the evaluation pieces, e.g. the kNN monitor)
6. the evaluation driver and the ensemble
7. the programs: the demo; the pictures' command line (`visualize.__main__`: it reads
   checkpoints, which the picture modules do not)
8. the experiment runner (it reuses the demo's data preparation and configs)
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LAYERS = {
    "freqjax.xla_env": 0, "freqjax.graph": 0, "freqjax.normalize": 0, "freqjax.cli": 0,
    "freqjax.optim": 0, "freqjax.parallel": 0,
    "freqjax.text": 1, "freqjax.absl_cli": 1,
    "freqjax.data": 2, "freqjax.models": 2,
    "freqjax.losses": 3, "freqjax.checkpoints": 3,
    "freqjax.evaluation": 4,
    "freqjax.pretraining": 5,
    "freqjax.visualize": 3, "freqjax.visualize.__main__": 7,
    "freqjax.evaluation.run": 6, "freqjax.evaluation.ensemble": 6,
    "freqjax.demo": 7, "freqjax.experiment": 8,
}
# Pictures must not pull in training: they read files and arrays only.
FORBIDDEN = {"freqjax.visualize": ("freqjax.pretraining", "freqjax.evaluation.run")}


def _layer(module: str) -> int:
  parts = module.split(".")
  for n in range(len(parts), 0, -1):
    if ".".join(parts[:n]) in LAYERS:
      return LAYERS[".".join(parts[:n])]
  if module == "freqjax":
    return 0
  raise KeyError(f"{module} has no layer: add its package to LAYERS in {__file__}")


def _package(module: str) -> str:
  return ".".join(module.split(".")[:2])


def _modules():
  for path in sorted((ROOT / "freqjax").rglob("*.py")):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts = parts[:-1]
    yield ".".join(parts), path


def _imports(module: str, path: pathlib.Path):
  """Every freqjax module `module` imports, function-level imports included."""
  package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
  for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
    if isinstance(node, ast.Import):
      names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1]
                        + ([base] if base else []))
      names = [f"{base}.{alias.name}" for alias in node.names] + [base]
    else:
      continue
    for name in names:
      if name.startswith("freqjax.") and name != module:
        # `from freqjax.data import pipeline` names a module; `from x import func`
        # resolves to x's own layer.
        yield name


def test_every_module_has_a_layer():
  for module, _ in _modules():
    _layer(module)


@pytest.mark.parametrize("module,path", list(_modules()), ids=lambda v: str(v))
def test_imports_point_down(module, path):
  mine = _layer(module)
  for target in _imports(module, path):
    try:
      theirs = _layer(target)
    except KeyError:
      continue  # a name imported from a module (its module is checked)
    same_package = _package(target) == _package(module)
    assert theirs < mine or (theirs == mine and same_package), (
        f"{module} (layer {mine}) imports {target} (layer {theirs})")
    for prefix, banned in FORBIDDEN.items():
      if module.startswith(prefix):
        assert not target.startswith(banned), f"{module} imports {target}"
