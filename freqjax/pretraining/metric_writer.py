"""Metrics to JSON lines (`metrics.jsonl`) and TensorBoard event files (`tensorboard/`)."""
import json
import os

import tensorboardX

METRICS_FILE = "metrics.jsonl"


def drop_lines_after(path: str, step: int) -> int:
  """Rewrites the JSON lines file `path` without the lines of steps after `step`.

  A run killed after its last checkpoint logged steps that the resumed run logs again;
  a line cut short by the kill is dropped too. The file is replaced atomically, and only
  when something is dropped.

  Returns:
    The number of lines dropped.
  """
  if not os.path.exists(path):
    return 0
  kept, dropped = [], 0
  with open(path, encoding="utf-8") as f:
    for line in f:
      try:
        keep = json.loads(line)["step"] <= step
      except (json.JSONDecodeError, KeyError, TypeError):
        keep = False
      if keep and line.endswith("\n"):
        kept.append(line)
      else:
        dropped += 1
  if dropped:
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as f:
      f.writelines(kept)
    os.replace(temporary, path)
  return dropped


class MetricWriter:
  """Appends `{"step": s, name: value, ...}` lines and TensorBoard scalars under `workdir`.

  `start_step` is the step the run starts (or resumes) from: logs of later steps, written
  before a kill, are dropped (`metrics.jsonl` rewritten, TensorBoard told to purge them),
  so each step appears once.
  """

  def __init__(self, workdir: str, enabled: bool = True, start_step: int = 0):
    self._enabled = enabled
    if enabled:
      path = os.path.join(workdir, METRICS_FILE)
      drop_lines_after(path, start_step)
      self._lines = open(path, "a", encoding="utf-8")
      self._board = tensorboardX.SummaryWriter(os.path.join(workdir, "tensorboard"),
                                               purge_step=start_step + 1)

  def write(self, step: int, metrics: dict[str, float]) -> None:
    if not self._enabled:
      return
    self._lines.write(json.dumps({"step": step, **metrics}) + "\n")
    self._lines.flush()
    for name, value in metrics.items():
      self._board.add_scalar(name, value, step)
    self._board.flush()

  def close(self) -> None:
    if self._enabled:
      self._lines.close()
      self._board.close()
