"""Tiny pretraining data and configs shared by the pretraining and resume tests."""
import json
import os

import pytest

from configs import pretrain as pretrain_configs
from freqjax.data import synthetic
from freqjax.text import embed


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
  """120 synthetic samples (16 frames) and the random-init text file for their classes."""
  root = tmp_path_factory.mktemp("synthetic")
  synthetic.write_dataset(str(root / "xperformer"), num_samples=120, seed=0, num_frames=16)
  embed.embed_synthetic(str(root / "text.npz"))
  return root


def tiny_config(tiny_data, **overrides):
  """`configs/pretrain.py:test` on `tiny_data`; `section__field=value` overrides."""
  config = pretrain_configs.get_config("test")
  config.data.path = str(tiny_data / "xperformer")
  config.text.path = str(tiny_data / "text.npz")
  for name, value in overrides.items():
    section, field = name.split("__")
    setattr(getattr(config, section), field, value)
  return config


def read_metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    return [json.loads(line) for line in f]
