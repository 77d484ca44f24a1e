"""Helpers shared by the tests: PyTorch references, fakes and tiny datasets."""
import os

import pytest


def import_torch():
  """`torch`, or a skip when it is missing — a failure under CI (`CI` set), where the
  PyTorch comparisons must run."""
  if os.environ.get("CI"):
    import torch  # pylint: disable=import-outside-toplevel
    return torch
  return pytest.importorskip("torch")
