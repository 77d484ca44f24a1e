"""A resumed run is the run that was started: the config check and the saved config.

`workdir/config.json` records the resolved config of a run. When a workdir already holds
checkpoints, `check_config` compares the config given now with that record before
anything is written: a field that changes what the run computes refuses, with one message
naming every such field and both values, unless the user passes `allow_change`. Fields in
`SAFE_FIELDS` change only what is logged or saved and may differ. `write_config` replaces
`config.json` atomically and keeps the record it replaces as
`config.before_step_<step>.json` (the config that ran up to that step), so no record is
ever lost.

`compare_configs` is the one comparison of a saved config with a wanted one (both
`flatten`ed): this resume check, the demo's workdir check (`freqjax.demo`) and the
experiment runner's checks of pretraining workdirs and evaluation reports
(`freqjax.experiment`) all use it, and name the differing fields the same way.
"""
from collections.abc import Callable, Mapping
import dataclasses
import json
import logging
import os
from typing import Any

import ml_collections

from freqjax import cli

CONFIG_FILE = "config.json"
# Fields that change what is logged, monitored or kept, or how the host feeds the devices,
# never the train state: a resumed run may change them freely.
SAFE_FIELDS = (
    "log_every_steps", "checkpoint_every_steps", "keep_checkpoints",
    "data.prefetch", "data.loader_threads",  # host-side buffering and batch making
    "data.test_split",  # read only by the kNN monitor
    "parallel.backend",  # pmap or shard_map compile the same step
)
SAFE_PREFIXES = ("monitor.",)  # the kNN monitor only watches
# Safe with the step schedule only: its learning rate at a step does not depend on the
# run's length, so more epochs extend the run. The cosine schedule's does (it decays to 0
# at the last step): every remaining step would get another rate than the first part of
# the run planned and than a run started with the new length.
EPOCHS_FIELD = "optim.epochs"


class ResumeConfigError(cli.UserError, ValueError):
  """The config given does not match the run saved in the workdir."""


def config_path(workdir: str) -> str:
  return os.path.join(workdir, CONFIG_FILE)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
  """`{"a.b.c": value}` of a nested config mapping (a `ConfigDict.to_dict()` or JSON)."""
  flat = {}
  for key, value in tree.items():
    if isinstance(value, Mapping):
      flat |= flatten(value, f"{prefix}{key}.")
    else:
      flat[f"{prefix}{key}"] = value
  return flat


class _Absent:
  """The value of a field that one of two compared configs lacks."""

  def __repr__(self) -> str:
    return "(absent)"


ABSENT = _Absent()


@dataclasses.dataclass(frozen=True)
class ConfigChanges:
  """The fields where a saved config and a wanted one differ (`compare_configs`).

  Attributes:
    fields: `{dotted field: (saved value, wanted value)}`, sorted by field; `ABSENT` for
      a field that one side lacks. Empty (and the object false) when the configs agree.
  """
  fields: dict[str, tuple[Any, Any]]

  def __bool__(self) -> bool:
    return bool(self.fields)

  def describe(self, limit: int | None = None) -> str:
    """`"a.b: saved 1, now 2; c: saved 'x', now (absent)"`: every field with both values.

    Args:
      limit: name at most this many fields, then `(+n more)`; None names them all.
    """
    shown = list(self.fields.items())[:limit]
    text = "; ".join(f"{field}: saved {old!r}, now {new!r}" for field, (old, new) in shown)
    hidden = len(self.fields) - len(shown)
    return text + (f" (+{hidden} more)" if hidden else "")


def compare_configs(saved: Mapping[str, Any], wanted: Mapping[str, Any],
                    ignore: Callable[[str], bool] | None = None) -> ConfigChanges:
  """The fields whose values differ between two flattened configs (see `flatten`).

  Args:
    saved: the config a workdir or report records, flattened.
    wanted: the config given now, flattened (JSON types: tuples as lists).
    ignore: fields that may differ (e.g. `SAFE_FIELDS` when resuming); None: none.

  Returns:
    Every differing field, a field present on one side only included.
  """
  fields = {}
  for field in sorted(saved.keys() | wanted.keys()):
    old, new = saved.get(field, ABSENT), wanted.get(field, ABSENT)
    if old != new and not (ignore and ignore(field)):
      fields[field] = (old, new)
  return ConfigChanges(fields)


def _as_json(config: ml_collections.ConfigDict) -> str:
  return config.to_json_best_effort(indent=2)


def changes_no_state(field: str) -> bool:
  """Whether a (flattened) field only changes what is logged, monitored or kept, or how the
  host feeds the devices: runs that differ only there train the same state."""
  return field in SAFE_FIELDS or field.startswith(SAFE_PREFIXES)


def _is_safe(field: str, saved: dict, config: ml_collections.ConfigDict) -> bool:
  if changes_no_state(field):
    return True
  return field == EPOCHS_FIELD and saved.get("optim", {}).get(
      "schedule") == config.optim.schedule == "step"


def read_saved(workdir: str) -> dict | None:
  """The saved config of `workdir` as a dict, or None when there is none."""
  path = config_path(workdir)
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ResumeConfigError(
          f"{path}: not valid JSON ({e}); it records the run's config. Restore it (an "
          f"earlier one may be beside it as config.before_step_*.json) or start a new "
          "--workdir.") from None


def check_config(config: ml_collections.ConfigDict, workdir: str, resuming: bool,
                 allow_change: bool) -> None:
  """Raises ResumeConfigError when resuming `workdir` with `config` would change the run.

  Args:
    config: the resolved config given now.
    workdir: the run's directory.
    resuming: whether `workdir` holds a checkpoint (else there is nothing to protect:
      the run starts over, and `write_config` keeps the old record).
    allow_change: the user's explicit consent (train.py --allow_config_change); the
      differences are then logged as a warning.
  """
  saved = read_saved(workdir) if resuming else None
  if saved is None:
    if resuming:
      logging.warning("%s is missing: cannot check that the checkpoints in %s belong to "
                      "this config; resuming with it.", config_path(workdir), workdir)
    return
  unsafe = compare_configs(flatten(saved), flatten(json.loads(_as_json(config))),
                           ignore=lambda field: _is_safe(field, saved, config))
  if not unsafe:
    return
  listed = unsafe.describe()
  if allow_change:
    logging.warning("%s: resuming with a changed config (--allow_config_change): %s.",
                    config_path(workdir), listed)
    return
  cosine = (" (optim.epochs with the cosine schedule changes the learning rate of every "
            "remaining step)" if EPOCHS_FIELD in unsafe.fields else "")
  raise ResumeConfigError(
      f"{config_path(workdir)}: resuming with this config would change the run: "
      f"{listed}{cosine}. To resume the run, drop these overrides; for a new run, use "
      "another --workdir; to change this one anyway, pass --allow_config_change (the old "
      "record is then kept as config.before_step_<step>.json).")


def _write_atomically(path: str, text: str) -> None:
  temporary = f"{path}.tmp"
  try:
    with open(temporary, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def write_config(config: ml_collections.ConfigDict, workdir: str, step: int) -> None:
  """Records `config` as `workdir/config.json`, atomically.

  A different record already there is kept as `config.before_step_<step>.json`, `step`
  being the step the run continues from.
  """
  path = config_path(workdir)
  text = _as_json(config)
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      previous = f.read()
    if previous == text:
      return
    _write_atomically(os.path.join(workdir, f"config.before_step_{step}.json"), previous)
  _write_atomically(path, text)
