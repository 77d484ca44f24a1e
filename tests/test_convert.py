"""Reading PyTorch checkpoints: files, prefixes and errors."""
import numpy as np
import pytest

from freqjax.checkpoints import pytorch as convert
from helpers import import_torch
from helpers.torch_stgcn import random_state_dict


@pytest.fixture(scope="module")
def state():
  return random_state_dict(seed=3)


def test_npz_and_moco_prefix_round_trip(tmp_path, state):
  moco = {f"encoder_q.{k}": v for k, v in state.items()}
  moco |= {f"encoder_k.{k}": v + 1 for k, v in state.items()}
  moco["queue"] = np.zeros((128, 32), np.float32)
  path = tmp_path / "moco.npz"
  np.savez(path, **moco)
  loaded = convert.load_state_dict(str(path))
  assert set(loaded) == set(state)
  a = convert.stgcn_from_pytorch(loaded)
  b = convert.stgcn_from_pytorch(state)
  np.testing.assert_array_equal(a["params"]["block3"]["tcn_conv"]["kernel"],
                                b["params"]["block3"]["tcn_conv"]["kernel"])
  # The query encoder was taken, not the key encoder.
  np.testing.assert_array_equal(a["params"]["data_bn"]["scale"], state["data_bn.weight"])
  # Layout: PyTorch (C_out, C_in, 9, 1) -> (9, 1, C_in, C_out).
  np.testing.assert_array_equal(a["params"]["block3"]["tcn_conv"]["kernel"][4, 0, 2, 5],
                                state["st_gcn_networks.3.tcn.2.weight"][5, 2, 4, 0])
  np.testing.assert_array_equal(a["batch_stats"]["block9"]["residual_bn"]["var"],
                                state["st_gcn_networks.9.residual.1.running_var"])


def test_pt_checkpoint_with_module_prefix(tmp_path, state):
  torch = import_torch()
  path = tmp_path / "epoch300_model.pt"
  torch.save({"state_dict": {f"module.encoder_q.{k}": torch.tensor(v)
                             for k, v in state.items()}, "epoch": 300}, path)
  loaded = convert.load_state_dict(str(path))
  np.testing.assert_array_equal(loaded["edge_importance.4"], state["edge_importance.4"])


def test_missing_and_misshaped_keys_are_named(state):
  broken = dict(state)
  del broken["st_gcn_networks.2.tcn.3.running_var"]
  with pytest.raises(convert.CheckpointError, match=r"tcn\.3\.running_var"):
    convert.stgcn_from_pytorch(broken, source="ckpt.pt")
  broken = dict(state)
  broken["st_gcn_networks.9.tcn.2.weight"] = np.zeros((256, 128, 9, 1), np.float32)
  with pytest.raises(convert.CheckpointError,
                     match=r"ckpt\.pt: 'st_gcn_networks\.9\.tcn\.2\.weight' has shape"):
    convert.stgcn_from_pytorch(broken, source="ckpt.pt")


def test_missing_file():
  with pytest.raises(FileNotFoundError, match="nowhere.npz"):
    convert.load_state_dict("/nowhere.npz")
