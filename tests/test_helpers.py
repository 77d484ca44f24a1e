"""The shared test helpers' own contract."""
import sys

import pytest

from helpers import import_torch


def test_missing_torch_fails_under_ci_and_skips_elsewhere(monkeypatch):
  monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
  monkeypatch.setenv("CI", "true")
  try:
    import_torch()
  except ImportError:
    pass
  except pytest.skip.Exception:  # a skip would hide the PyTorch comparisons on CI
    pytest.fail("import_torch skipped under CI; it must raise")
  else:
    pytest.fail("import_torch returned without torch")
  monkeypatch.delenv("CI")
  with pytest.raises(pytest.skip.Exception):
    import_torch()
