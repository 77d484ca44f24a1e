"""What the FreST blocks learned, as one PNG: filter magnitudes and threshold pass rates.

For each FreST block of an encoder (`frest9`, ...) and each of its branches (`fres` over
joints, `fret` over frames; `freqjax.models.frest`), one row of two panels:

- the learned complex weights' magnitude per frequency bin: `|W_global|` (every bin),
  `|W_local|` and `|W_global + W_local|` (the weight of a bin that passes the threshold);
  the mean over channels with the 10-90 % range of channels shaded. With one weight per
  channel (the default, `frest_per_frequency=False`) these are the same at every bin;
- with a batch (`frest_pass_rates`), how often each bin passes the threshold: the
  fraction of the branch's sequences in which the bin's energy over the lower median
  energy exceeds θ, i.e. where the local filter acts.

Bin k of a length-L sequence is k cycles per sequence (rFFT), k = 0..L//2.

`python -m freqjax.visualize frest --workdir RUN` draws a pretraining run's encoder with
the pass rates on its first training samples.
"""
from collections.abc import Mapping
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
import numpy as np

from freqjax import cli
from freqjax.models.frest import BRANCH_NORMS, FreST, branch_sequences, frequency_mask

_BRANCH_TITLES = {"fres": "FreS (over joints)", "fret": "FreT (over frames)"}


class NoFrestError(cli.UserError, ValueError):
  """The encoder has no FreST block (`model.frest_blocks=()`): there is nothing to draw."""


def spectral_filters(encoder_params: Mapping) -> dict[str, Mapping]:
  """`{"frest9/fres": {"w_global", "w_local", "threshold"}, ...}` of an encoder's params,
  in block order."""
  found = {}
  for block in sorted((k for k in encoder_params if k.startswith("frest")),
                      key=lambda k: int(k.removeprefix("frest") or 0)):
    for branch, params in encoder_params[block].items():
      if isinstance(params, Mapping) and "threshold" in params:
        found[f"{block}/{branch}"] = params
  return found


def frest_pass_rates(encoder: nn.Module, variables: Mapping, x) -> dict[str, np.ndarray]:
  """How often each frequency bin passes each FreST filter's threshold on a batch.

  The encoder runs once in inference mode (compiled) while an interceptor records the
  input of every `FreST`; each branch's sequences (`freqjax.models.frest.branch_sequences`,
  also when FreST after the last block computes only their mean) and their masks
  (`frequency_mask`, with that filter's θ) are recomputed from it. The model's numbers are
  untouched.

  Args:
    encoder: the `STGCN` the variables belong to.
    variables: `{"params", "batch_stats"}` of the encoder.
    x: `(N, C, T, V, M)` a batch of inputs (the stream the encoder was trained on).

  Returns:
    `{"frest9/fres": (L//2 + 1,) float}`: per bin, the fraction of the filter's
    sequences (FreS: one per person and frame; FreT: one per person, joint and channel
    row of the feature map) whose mask is 1.
  """

  def run(variables, x):
    inputs = {}

    def record(next_fun, args, kwargs, context):
      if isinstance(context.module, FreST) and context.method_name == "__call__":
        inputs[context.module.name] = args[0]
      return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
      encoder.apply(variables, x, train=False)
    filters = spectral_filters(variables["params"])
    rates = {}
    for name in filters:
      block, branch = name.split("/")
      params = variables["params"][block]
      norm = params.get(BRANCH_NORMS[branch])
      affine = None if norm is None else (norm["scale"], norm["bias"])
      sequences = branch_sequences(inputs[block], branch, affine, encoder.kernels)
      spectrum = jnp.fft.rfft(sequences.astype(jnp.float32), axis=1, norm="ortho")
      mask = frequency_mask(spectrum, filters[name]["threshold"])  # (B, L_f, ..., 1)
      mask = jnp.moveaxis(mask, 1, 0).reshape(mask.shape[1], -1)
      rates[name] = jnp.mean(mask, axis=1)
    return rates

  rates = jax.jit(run)(variables, jnp.asarray(x, dtype=jnp.float32))
  return {name: np.asarray(rates[name]) for name in sorted(rates, key=_block_order)}


def _block_order(name: str) -> tuple[int, str]:
  block, branch = name.split("/", 1)
  return int(block.removeprefix("frest") or 0), branch


def _magnitude(pairs) -> np.ndarray:
  """`(..., 2)` real/imaginary pairs → `(bins or 1, channels)` magnitudes."""
  pairs = np.asarray(pairs, dtype=np.float64)
  magnitude = np.hypot(pairs[..., 0], pairs[..., 1])
  return magnitude[None] if magnitude.ndim == 1 else magnitude


def plot_frest(encoder_params: Mapping, out_path: str,
               pass_rates: Mapping[str, np.ndarray] | None = None, title: str = "") -> str:
  """Draws every FreST filter's magnitudes (and pass rates, when given) into a PNG.

  Args:
    encoder_params: the encoder's `params` (e.g. `state.params["encoder"]`), numpy or jax.
    out_path: the PNG to write.
    pass_rates: `frest_pass_rates(...)` of a batch, or None for the magnitudes only.
    title: the figure's title (e.g. the run and its step).

  Returns:
    `out_path`.

  Raises:
    NoFrestError: the params hold no FreST block (`model.frest_blocks=()`).
  """
  filters = spectral_filters(encoder_params)
  if not filters:
    raise NoFrestError("plot_frest: the encoder has no FreST block (model.frest_blocks is "
                       "empty), so there is nothing to draw.")
  columns = 1 if pass_rates is None else 2
  fig = Figure(figsize=(5.0 * columns, 2.6 * len(filters) + 0.5))
  FigureCanvasAgg(fig)
  if title:
    fig.suptitle(title, fontsize=10)
  for row, (name, params) in enumerate(filters.items()):
    block, branch = name.split("/", 1)
    threshold = float(np.asarray(params["threshold"]))
    label = f"{block} {_BRANCH_TITLES.get(branch, branch)}"
    rates = None if pass_rates is None else pass_rates.get(name)
    w_global = np.asarray(params["w_global"])
    per_frequency = w_global.ndim == 3
    num_bins = (w_global.shape[0] if per_frequency
                else len(rates) if rates is not None else None)
    bins = np.arange(num_bins) if num_bins is not None else np.array([0.0, 1.0])

    ax = fig.add_subplot(len(filters), columns, row * columns + 1)
    for weights, key in ((w_global, "global"), (np.asarray(params["w_local"]), "local"),
                         (w_global + np.asarray(params["w_local"]), "global + local")):
      magnitude = _magnitude(weights)
      mean = np.broadcast_to(magnitude.mean(axis=1), bins.shape)
      low, high = (np.broadcast_to(np.percentile(magnitude, q, axis=1), bins.shape)
                   for q in (10, 90))
      line = ax.plot(bins, mean, marker="o" if per_frequency else None, ms=3,
                     label=f"|W {key}|")[0]
      ax.fill_between(bins, low, high, color=line.get_color(), alpha=0.15, lw=0)
    ax.set_ylim(bottom=0)
    ax.set_title(f"{label}: filter magnitude"
                 + ("" if per_frequency else " (one weight per channel)"), fontsize=9)
    if num_bins is None:
      ax.set_xticks([])
      ax.set_xlabel("every frequency bin", fontsize=8)
    else:
      ax.set_xlabel("frequency bin (cycles per sequence)", fontsize=8)
      ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)

    if pass_rates is not None:
      ax = fig.add_subplot(len(filters), columns, row * columns + 2)
      if rates is None:
        ax.text(0.5, 0.5, "no pass rates for this filter", ha="center", va="center",
                transform=ax.transAxes)
      else:
        ax.bar(np.arange(len(rates)), 100.0 * np.asarray(rates), color="tab:green")
        ax.set_xlabel("frequency bin (cycles per sequence)", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
      ax.set_ylim(0, 100)
      ax.set_ylabel("% of sequences", fontsize=8)
      ax.set_title(f"{label}: bins passing θ = {threshold:.3f}", fontsize=9)
      ax.tick_params(labelsize=7)
      ax.grid(alpha=0.3, axis="y")
  fig.tight_layout()
  out_dir = os.path.dirname(os.path.abspath(out_path))
  os.makedirs(out_dir, exist_ok=True)
  fig.savefig(out_path, dpi=100)
  return out_path
