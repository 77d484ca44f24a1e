"""Training curves of a pretraining run from its `metrics.jsonl`, as one PNG.

  python -m freqjax.visualize curves --workdir runs/ntu60_xsub_joint

writes `runs/ntu60_xsub_joint/training_curves.png`. Each line of `metrics.jsonl` is
`{"step": s, name: value, ...}` (the pretraining loop's metric writer); a panel per group,
against the step: each loss (`loss`, `loss/instance`, `loss/fm`, `loss/harmonizer`), the
InfoNCE accuracy, the learning rate, the kNN monitor (`monitor/*`), the FreST thresholds
(`threshold/<block>/<branch>`, one panel), the gradient norm, then any other number a
line holds (`epoch` excepted). Missing keys are simply absent panels or gaps; a line that
is not whole JSON (the last one of a running job, mid-write) is skipped; a step written
twice (a resumed run repeats the steps after its last checkpoint) keeps its last line.
"""
from collections.abc import Iterable
import json
import math
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

OUT_NAME = "training_curves.png"
# Panels in this order first; any other numeric key follows, alphabetically.
_KNOWN_ORDER = ("loss", "loss/", "accuracy", "lr", "monitor/", "threshold/", "grad_norm",
                "samples_per_second")
_TITLES = {"loss": "loss (total)", "accuracy": "InfoNCE accuracy (%)", "lr": "learning rate",
           "threshold/": "FreST thresholds θ", "grad_norm": "gradient norm",
           "samples_per_second": "samples / s", "monitor/knn_top1": "kNN monitor top-1 (%)"}
_NOT_PLOTTED = frozenset({"step", "epoch"})
# Drawn in percent: the step logs InfoNCE accuracy as a fraction (the monitor logs %).
_PERCENT_OF_FRACTION = frozenset({"accuracy"})


def read_metrics(path: str) -> list[dict[str, float]]:
  """The lines of a `metrics.jsonl` as dicts with an int `step` and finite float values.

  Lines that are not a JSON object with an integer `step` (a partly written last line, a
  blank line) are skipped, and so are values that are not finite numbers.
  """
  rows = []
  with open(path, encoding="utf-8", errors="replace") as f:
    for line in f:
      try:
        record = json.loads(line)
      except ValueError:
        continue
      if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        continue
      row = {"step": record["step"]}
      for name, value in record.items():
        if (name != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)):
          row[name] = float(value)
      rows.append(row)
  return rows


def metric_series(rows: list[dict[str, float]], name: str) -> tuple[np.ndarray, np.ndarray]:
  """`(steps, values)` of one metric, by increasing step.

  A resumed run writes again the steps after its last checkpoint: the line written last
  for a step wins, so the curve never runs backwards.
  """
  by_step = {row["step"]: row[name] for row in rows if name in row}
  steps = np.array(sorted(by_step), dtype=np.int64)
  return steps, np.array([by_step[s] for s in steps], dtype=np.float64)


def _panel_of(name: str) -> str:
  """The panel a metric goes to: thresholds share one, every other metric has its own."""
  return "threshold/" if name.startswith("threshold/") else name


def _panel_rank(panel: str) -> tuple[int, str]:
  for rank, prefix in enumerate(_KNOWN_ORDER):
    if panel == prefix or (prefix.endswith("/") and panel.startswith(prefix)):
      return rank, panel
  return len(_KNOWN_ORDER), panel


def group_panels(names: Iterable[str]) -> dict[str, list[str]]:
  """`{panel: [metric names]}` in display order, for the metric names of a run."""
  panels: dict[str, list[str]] = {}
  for name in sorted(set(names) - _NOT_PLOTTED):
    panels.setdefault(_panel_of(name), []).append(name)
  return {panel: panels[panel] for panel in sorted(panels, key=_panel_rank)}


def plot_training_curves(metrics_path: str, out_path: str | None = None) -> str:
  """Draws the curves of `metrics_path` into a PNG; returns its path.

  Args:
    metrics_path: a run's `metrics.jsonl` (it may still be being written).
    out_path: the PNG; default `training_curves.png` beside `metrics_path`.

  The PNG is written to a temporary name and renamed, so a reader never sees half a file.
  A file with no whole line yet gives a figure that says so.
  """
  if out_path is None:
    out_path = os.path.join(os.path.dirname(os.path.abspath(metrics_path)), OUT_NAME)
  run = os.path.basename(os.path.dirname(os.path.abspath(metrics_path)))
  fig = training_curves_figure(read_metrics(metrics_path), run, metrics_path)
  temporary = f"{out_path}.tmp.png"
  fig.savefig(temporary, dpi=100)
  os.replace(temporary, out_path)
  return out_path


def training_curves_figure(rows: list[dict[str, float]], run: str, source: str) -> Figure:
  """The figure of `plot_training_curves`: one panel per `group_panels` entry, `rows` as
  `read_metrics` returns them, `run` in the title, `source` named when `rows` is empty."""
  panels = group_panels(name for row in rows for name in row)
  columns = min(3, max(len(panels), 1))
  num_rows = max(1, -(-len(panels) // columns))
  fig = Figure(figsize=(4.2 * columns, 2.8 * num_rows + 0.4))
  FigureCanvasAgg(fig)
  last = rows[-1]["step"] if rows else None
  fig.suptitle(f"{run}: training curves" + (f" up to step {last}" if rows else ""),
               fontsize=11)
  if not panels:
    fig.text(0.5, 0.5, f"no metrics yet in {source}", ha="center", va="center")
  for i, (panel, names) in enumerate(panels.items()):
    ax = fig.add_subplot(num_rows, columns, i + 1)
    for name in names:
      steps, values = metric_series(rows, name)
      if name in _PERCENT_OF_FRACTION:
        values = 100 * values
      # Sparse metrics (the kNN monitor, a handful of points) get markers.
      marker = "o" if len(steps) <= 20 else None
      label = name.removeprefix("threshold/") if panel == "threshold/" else name
      ax.plot(steps, values, marker=marker, ms=3, lw=1.2, label=label)
    ax.set_title(_TITLES.get(panel, panel), fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if panel == "lr":
      ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
    if len(names) > 1:
      ax.legend(fontsize=7)
  fig.tight_layout()
  return fig
