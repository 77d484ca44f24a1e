"""Orbax checkpoints of the whole train state, and encoder weights for `init_from`/eval.

Layout: `workdir/checkpoints/<step>/{state,meta}`. `state` is the full `TrainState`
(saved as one unreplicated copy, so a run can resume on another device count); `meta` is
JSON (step, epoch, samples seen). Orbax writes each step to a temporary directory and
renames it when complete, so a killed run leaves only whole checkpoints.

Resume order: restore the latest step into a freshly initialised state of the same config
(its shapes, dtypes and placement are the target), then the data pipeline restarts at
`state.step` (batches are a pure function of the step) and every random draw is
`fold_in(state.rng, step)`: the resumed run continues bit for bit.
"""
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from freqjax.checkpoints import pytorch as convert

CHECKPOINT_DIR = "checkpoints"


def manager(workdir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR)),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
      item_names=("state", "meta"))


def save(mngr: ocp.CheckpointManager, step: int, state, meta: dict) -> None:
  """Saves asynchronously; call `mngr.wait_until_finished()` before the process ends."""
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          meta=ocp.args.JsonSave(meta)))


def restore_latest(mngr: ocp.CheckpointManager, target):
  """`(state, meta)` of the latest checkpoint restored into `target`'s structure, or None."""
  step = mngr.latest_step()
  if step is None:
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
  restored = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
  return restored.state, restored.meta


def load_encoder_variables(source: str, model) -> tuple[dict, int | None, str]:
  """Encoder `{"params", "batch_stats"}` from a freqjax workdir or a PyTorch checkpoint.

  Args:
    source: a workdir (its latest checkpoint's query encoder), or a `.pt/.pth/.tar/.npz`
      ST-GCN state dict (SkeletonCLR/AimCLR/CrosSCLR, see `freqjax.checkpoints.pytorch`).
    model: the target `STGCN` (a plain one is used for PyTorch files; FreST weights are
      then missing and the caller keeps its own).

  Returns:
    `(variables, step, description)`: the variables (numpy), the pretraining step of the
    checkpoint (None for a PyTorch file, which does not record one) and a one-line
    description of where they came from.
  """
  if os.path.isdir(source):
    directory = os.path.join(source, CHECKPOINT_DIR)
    mngr = ocp.CheckpointManager(os.path.abspath(directory), item_names=("state", "meta"),
                                 options=ocp.CheckpointManagerOptions(read_only=True,
                                                                      create=False))
    step = mngr.latest_step() if os.path.isdir(directory) else None
    if step is None:
      raise FileNotFoundError(f"{source}: no checkpoint under {directory}; pretrain first "
                              "(python train.py --workdir ...) or pass a PyTorch checkpoint.")
    state = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    state = state.state
    variables = {"params": state["params"]["encoder"], "batch_stats": state["batch_stats"]}
    return jax.tree.map(np.asarray, variables), int(step), f"{source} (step {step})"
  state_dict = convert.load_state_dict(source)
  plain = model.clone(frest_blocks=())
  return convert.stgcn_from_pytorch(state_dict, plain, source=source), None, source


def merge_variables(target: dict, source: dict, where: str) -> dict:
  """`target` with every leaf that `source` has replaced (FreST leaves it lacks are kept).

  Raises a ValueError naming the leaf when a shape differs.
  """
  flat_source = {jax.tree_util.keystr(p): v
                 for p, v in jax.tree_util.tree_flatten_with_path(source)[0]}

  def pick(path, leaf):
    value = flat_source.get(jax.tree_util.keystr(path))
    if value is None:
      return leaf
    if np.shape(value) != np.shape(leaf):
      raise ValueError(f"{where}: {jax.tree_util.keystr(path)} has shape {np.shape(value)} "
                       f"but the model has {np.shape(leaf)}; do the model configs match?")
    return np.asarray(value, dtype=np.asarray(leaf).dtype)

  return jax.tree_util.tree_map_with_path(pick, target)
