"""Orbax checkpoints of the whole train state, and encoder weights for `init_from`/eval.

Layout: `workdir/config.json` (the run's resolved config, written by `train.py`) and
`workdir/checkpoints/<step>/{state,meta}`. `state` is the full `TrainState`
(saved as one unreplicated copy, so a run can resume on another device count); `meta` is
JSON (step, epoch, samples seen). Orbax writes each step to a temporary directory and
renames it when complete, so a killed run leaves only whole checkpoints.

Resume order: restore the latest step into a freshly initialised state of the same config
(its shapes, dtypes and placement are the target), then the data pipeline restarts at
`state.step` (batches are a pure function of the step) and every random draw is
`fold_in(state.rng, step)`: the resumed run continues bit for bit.

A checkpoint that cannot be restored (a file deleted or truncated, a disk error) is not a
dead end: resume and evaluation name it, warn, and fall back to the newest one that
restores. Resume moves the damaged step to `workdir/damaged_checkpoints/<step>` (the run
will write that step again); only when no checkpoint restores is it an error.
"""
from collections.abc import Callable
import json
import logging
import os
import shutil
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from freqjax import cli
from freqjax.checkpoints import pytorch as convert

CHECKPOINT_DIR = "checkpoints"
DAMAGED_DIR = "damaged_checkpoints"
RUN_CONFIG = "config.json"


class CheckpointError(cli.UserError, ValueError):
  """No checkpoint of a workdir can be restored; the message names each and what to do."""


class RunConfigError(cli.UserError, ValueError):
  """A workdir's `config.json` is missing or not JSON; the message names it."""


def read_run_config(workdir: str) -> tuple[dict, str]:
  """`(config, path)`: the pretraining config recorded in `workdir/config.json`, a dict.

  It says which model and data the workdir's checkpoints belong to.
  """
  path = os.path.join(workdir, RUN_CONFIG)
  if not os.path.isdir(workdir):
    raise RunConfigError(f"{workdir}: no such workdir.")
  if not os.path.exists(path):
    raise RunConfigError(
        f"{path} is missing: the pretraining config says which model and data the "
        f"checkpoint in {workdir} belongs to. Point --workdir (or init_from) at the "
        "directory `python train.py` wrote.")
  with open(path, encoding="utf-8") as f:
    try:
      return json.load(f), path
    except json.JSONDecodeError as e:
      raise RunConfigError(f"{path}: not valid JSON ({e}).") from None


def manager(workdir: str, max_to_keep: int = 3) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, CHECKPOINT_DIR)),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True),
      item_names=("state", "meta"))


def save(mngr: ocp.CheckpointManager, step: int, state, meta: dict) -> None:
  """Saves asynchronously; call `mngr.wait_until_finished()` before the process ends."""
  mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                          meta=ocp.args.JsonSave(meta)))


def _first_line(error: BaseException) -> str:
  """`Type: first line of the message`: Orbax/TensorStore errors run to many lines."""
  lines = str(error).strip().splitlines()
  return f"{type(error).__name__}: {lines[0][:300] if lines else ''}"


def _restore_newest_intact(mngr: ocp.CheckpointManager, restore: Callable[[int], Any],
                           steps: list[int] | None = None,
                           ) -> tuple[Any, int, list[tuple[int, str]]] | None:
  """`restore(step)` of the newest step that restores, tried from the latest down.

  Args:
    mngr: the checkpoints.
    restore: `step -> restored`.
    steps: the steps to try (default: every step of `mngr`).

  Returns:
    `(restored, step, damaged)` with `damaged` the `(step, error)` of each newer step
    that failed, or None when the manager holds no step.

  Raises:
    CheckpointError: every step failed; the message names each with its error.
  """
  steps = sorted(mngr.all_steps() if steps is None else steps, reverse=True)
  if not steps:
    return None
  damaged = []
  for step in steps:
    try:
      return restore(step), step, damaged
    except Exception as error:  # pylint: disable=broad-except
      # Orbax and TensorStore raise many types (ValueError, JSONDecodeError, OSError,
      # RuntimeError...) for one missing or truncated file.
      damaged.append((step, _first_line(error)))
  directory = str(mngr.directory)
  failures = "; ".join(f"step {step}: {error}" for step, error in damaged)
  raise CheckpointError(
      f"{directory}: no checkpoint can be restored ({failures}). If model or optimizer "
      "fields were changed (--allow_config_change), go back to the values of the run's "
      f"config.json; if the files are damaged, delete {directory} to start over.")


def _damaged_list(directory: str, damaged: list[tuple[int, str]]) -> str:
  return "; ".join(f"{os.path.join(directory, str(step))} ({error})"
                   for step, error in damaged)


def restore_latest(mngr: ocp.CheckpointManager, target):
  """`(state, meta)` of the newest checkpoint that restores into `target`'s structure, or
  None when there is none.

  A newer checkpoint that fails to restore is logged as a warning and moved (on process
  0) to `<workdir>/damaged_checkpoints/<step>`, so that the resumed run can save that step
  again. Raises `CheckpointError` when no checkpoint restores.
  """
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)

  def restore(step):
    return mngr.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))

  found = _restore_newest_intact(mngr, restore)
  if found is None:
    return None
  restored, step, damaged = found
  if damaged:
    directory = str(mngr.directory)
    aside = os.path.join(os.path.dirname(directory), DAMAGED_DIR)
    if jax.process_index() == 0:
      for bad_step, _ in damaged:
        os.makedirs(aside, exist_ok=True)
        destination = os.path.join(aside, str(bad_step))
        if os.path.exists(destination):
          shutil.rmtree(destination)  # an older copy of the same step, also damaged
        os.replace(os.path.join(directory, str(bad_step)), destination)
    mngr.reload()
    logging.warning("%s cannot be restored; resuming from step %d instead. Moved the damaged "
                    "checkpoint(s) to %s: delete them once you no longer need them.",
                    _damaged_list(directory, damaged), step, aside)
  return restored.state, restored.meta


def load_encoder_variables(source: str, model, step: int | None = None,
                           ) -> tuple[dict, int | None, str]:
  """Encoder `{"params", "batch_stats"}` from a freqjax workdir or a PyTorch checkpoint.

  Args:
    source: a workdir (its latest checkpoint's query encoder), or a `.pt/.pth/.tar/.npz`
      ST-GCN state dict (SkeletonCLR/AimCLR/CrosSCLR, see `freqjax.checkpoints.pytorch`).
    model: the target `STGCN` (a plain one is used for PyTorch files; FreST weights are
      then missing and the caller keeps its own).
    step: a workdir's checkpoint to read instead of the latest (an error if it is not
      there or does not restore).

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
    def restore(saved_step):
      return mngr.restore(saved_step,
                          args=ocp.args.Composite(state=ocp.args.StandardRestore())).state

    saved = sorted(mngr.all_steps()) if os.path.isdir(directory) else []
    if not saved:
      raise FileNotFoundError(f"{source}: no checkpoint under {directory}; pretrain first "
                              "(python train.py --workdir ...) or pass a PyTorch checkpoint.")
    if step is not None and step not in saved:
      raise CheckpointError(f"{directory} has no checkpoint of step {step}; its steps are "
                            f"{', '.join(map(str, saved))}.")
    state, step, damaged = _restore_newest_intact(mngr, restore,
                                                  None if step is None else [step])
    if damaged:
      logging.warning("%s cannot be restored; using step %d instead. Delete the damaged "
                      "checkpoint(s), or resume training in %s, which sets them aside.",
                      _damaged_list(directory, damaged), step, source)
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
