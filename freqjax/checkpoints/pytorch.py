"""Import of PyTorch ST-GCN checkpoints (SkeletonCLR, AimCLR, CrosSCLR, MoCo-style).

Names and shapes follow `st_gcn_networks.{i}.gcn.conv.weight` etc. (the reference model's
list is `tests/helpers/aimclr_stgcn_state_dict.txt`). PyTorch convolutions are
`(C_out, C_in, kT, kV)` on NCHW; ours are `(kT, kV, C_in, C_out)` on channels-last, and a
1×1 conv is a `Dense` `(C_in, C_out)`. BatchNorm `weight/bias/running_mean/running_var`
map to `scale/bias` params and `mean/var` batch stats (`freqjax.models.BatchNorm` keeps
PyTorch's momentum and unbiased running variance, so nothing is rescaled).
"""
import os
from typing import Mapping

import jax
import numpy as np

from freqjax.models import STGCN

# Prefixes of whole-model checkpoints in front of the encoder's names, tried in order:
# DataParallel's `module.`, then MoCo's query encoder (SkeletonCLR/AimCLR/CrosSCLR).
_PREFIXES = ("module.", "encoder_q.")


class CheckpointError(ValueError):
  """A checkpoint that cannot be mapped onto the encoder; the message names the key."""


def load_state_dict(path: str) -> dict[str, np.ndarray]:
  """Reads a state dict from `.npz` or (with torch installed) `.pt`/`.pth`/`.tar`.

  Whole training checkpoints (`{"state_dict": ...}` or `{"model": ...}`) are unwrapped,
  and the `module.` / `encoder_q.` prefixes stripped (the key encoder's `encoder_k.`
  entries and MoCo queues are dropped).
  """
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such checkpoint file.")
  if path.endswith(".npz"):
    with np.load(path, allow_pickle=False) as f:
      state = {k: f[k] for k in f.files}
  else:
    try:
      import torch  # Optional: only needed to read PyTorch pickles.
    except ImportError as e:
      raise CheckpointError(f"{path}: reading a PyTorch checkpoint needs torch "
                            "(pip install torch), or convert it to .npz first.") from e
    raw = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
      if isinstance(raw, dict) and isinstance(raw.get(wrapper), dict):
        raw = raw[wrapper]
    state = {k: v.detach().cpu().numpy() for k, v in raw.items() if hasattr(v, "detach")}
  return strip_prefixes(state)


def strip_prefixes(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
  """Removes `module.` and keeps only `encoder_q.` entries when a MoCo prefix is present."""
  state = dict(state)
  for prefix in _PREFIXES:
    if any(k.startswith(prefix) for k in state):
      state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
  return state


def _pytorch_name(path: tuple[str, ...], collection: str) -> tuple[str, callable]:
  """The PyTorch key and the array transform for one freqjax leaf."""
  bn = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
  if path[0] == "data_bn":
    return f"data_bn.{bn[path[1]]}", lambda a: a
  block = int(path[0].removeprefix("block"))
  module, leaf = path[1], path[-1]
  base = f"st_gcn_networks.{block}"
  if module == "edge_importance":
    return f"edge_importance.{block}", lambda a: a
  if module == "gcn":
    name = f"{base}.gcn.conv.{'weight' if leaf == 'kernel' else 'bias'}"
    return name, (lambda a: a[:, :, 0, 0].T) if leaf == "kernel" else (lambda a: a)
  torch_module = {"tcn_bn1": "tcn.0", "tcn_conv": "tcn.2", "tcn_bn2": "tcn.3",
                  "residual_conv": "residual.0", "residual_bn": "residual.1"}[module]
  if module.endswith("conv"):
    name = f"{base}.{torch_module}.{'weight' if leaf == 'kernel' else 'bias'}"
    return name, (lambda a: a.transpose(2, 3, 1, 0)) if leaf == "kernel" else (lambda a: a)
  return f"{base}.{torch_module}.{bn[leaf]}", lambda a: a


def stgcn_from_pytorch(state_dict: Mapping[str, np.ndarray], model: STGCN | None = None,
                       source: str = "state dict", dtype: np.dtype = np.float32) -> dict:
  """Maps a PyTorch ST-GCN state dict onto `model`'s variables.

  Args:
    state_dict: names → numpy arrays (prefixes as in `load_state_dict` are stripped).
    model: the target encoder; default `STGCN(frest_blocks=())`. FreST parameters have
      no PyTorch counterpart: convert for a plain encoder and merge.
    source: how errors name where the weights came from (a path).
    dtype: of the returned arrays (float64 to compare with a float64 PyTorch model).

  Returns:
    `{"params": ..., "batch_stats": ...}` as numpy arrays of `dtype`.

  Raises:
    CheckpointError: a missing key or a shape that does not match, naming both.
  """
  model = model or STGCN(frest_blocks=())
  state_dict = strip_prefixes(state_dict)
  abstract = jax.eval_shape(
      lambda: model.init(jax.random.key(0), np.zeros((1, 3, 8, 25, 2), np.float32),
                         train=False))
  missing = []

  def convert(path, target, collection):
    keys = tuple(getattr(p, "key", p) for p in path)
    if keys[0].startswith("frest"):
      raise CheckpointError(f"{source}: PyTorch ST-GCN checkpoints have no FreST weights; "
                            "convert for STGCN(frest_blocks=()) and merge.")
    name, transform = _pytorch_name(keys, collection)
    if name not in state_dict:
      missing.append(name)
      return None
    value = transform(np.asarray(state_dict[name], dtype))
    if value.shape != target.shape:
      raise CheckpointError(
          f"{source}: '{name}' has shape {np.shape(state_dict[name])}, which maps to "
          f"{value.shape}, but freqjax expects {target.shape} for {'/'.join(keys)}.")
    return value

  out = {c: jax.tree_util.tree_map_with_path(lambda p, t, c=c: convert(p, t, c), abstract[c])
         for c in ("params", "batch_stats")}
  if missing:
    raise CheckpointError(f"{source}: missing {len(missing)} key(s) the encoder needs, e.g. "
                          f"{missing[:5]}; is this an ST-GCN state dict?")
  return out
