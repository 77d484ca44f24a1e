"""Metrics to JSON lines (`metrics.jsonl`) and TensorBoard event files (`tensorboard/`)."""
import json
import os

import tensorboardX


class MetricWriter:
  """Appends `{"step": s, name: value, ...}` lines and TensorBoard scalars under `workdir`."""

  def __init__(self, workdir: str, enabled: bool = True):
    self._enabled = enabled
    if enabled:
      self._lines = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")
      self._board = tensorboardX.SummaryWriter(os.path.join(workdir, "tensorboard"))

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
