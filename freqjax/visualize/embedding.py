"""A 2-D map of evaluation features coloured by class (scikit-learn's t-SNE), as a PNG.

t-SNE runs on a seeded class-balanced subset (at most `max_points`, about 2000: a few
tens of seconds on a CPU core), after L2-normalising the features (the kNN protocol's
cosine geometry) and reducing them to 50 dimensions with PCA when they are wider, the
usual preparation for t-SNE. The evaluation report writes it beside the confusion
matrix (`embedding.png`).
"""
from collections.abc import Sequence
import os

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

MAX_POINTS = 2000
MIN_POINTS = 5
_PCA_DIM = 50
# Up to this many classes get a legend with their names; beyond, the class id is written
# at each class's median position instead.
_LEGEND_MAX_CLASSES = 20


def balanced_subset(labels: np.ndarray, max_per_class: int, seed: int = 0) -> np.ndarray:
  """Sorted indices of at most `max_per_class` samples of each class, drawn with `seed`.

  Args:
    labels: `(N,)` int class ids.
    max_per_class: a class with more samples keeps a uniformly drawn `max_per_class`.
    seed: the draw's seed (a `numpy.random.default_rng`).
  """
  rng = np.random.default_rng(seed)
  labels = np.asarray(labels)
  keep = []
  for label in np.unique(labels):
    members = np.flatnonzero(labels == label)
    if len(members) > max_per_class:
      members = rng.choice(members, max_per_class, replace=False)
    keep.append(members)
  return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def embed_2d(features: np.ndarray, seed: int = 0) -> np.ndarray:
  """`(N, 2)` t-SNE coordinates of `(N, D)` features (L2-normalised, PCA to 50 if wider)."""
  x = np.asarray(features, dtype=np.float64)
  x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
  if x.shape[1] > _PCA_DIM and len(x) > _PCA_DIM:
    x = PCA(_PCA_DIM, random_state=seed).fit_transform(x)
  # scikit-learn requires perplexity < N; 30 is its default for larger sets.
  perplexity = float(min(30.0, (len(x) - 1) / 3))
  return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def _class_colours(num_classes: int) -> list:
  """Distinct qualitative colours up to 20 classes, a continuous map beyond."""
  if num_classes <= 20:
    return list(colormaps["tab10" if num_classes <= 10 else "tab20"].colors[:num_classes])
  return [colormaps["turbo"](i / (num_classes - 1)) for i in range(num_classes)]


def plot_embedding(features, labels, class_names: Sequence[str] | None, out_path: str, *,
                   max_per_class: int | None = None, max_points: int = MAX_POINTS,
                   seed: int = 0, title: str = "") -> str:
  """Draws a t-SNE map of features coloured by class into a PNG; returns its path.

  Args:
    features: `(N, D)` float features (one row per sample).
    labels: `(N,)` int class ids.
    class_names: names by class id (None: `class <id>`).
    out_path: the PNG to write.
    max_per_class: samples kept per class; default `max_points // number of classes`.
    max_points: the subset's size bound when `max_per_class` is not given.
    seed: the subset draw and t-SNE's seed.
    title: the figure's title (the sample and class counts are appended).

  Raises:
    ValueError: mismatched shapes, or fewer than 5 samples (t-SNE needs a few).
  """
  features = np.asarray(features)
  labels = np.asarray(labels)
  if features.ndim != 2 or labels.shape != (features.shape[0],):
    raise ValueError(f"plot_embedding: features must be (N, D) and labels (N,); got "
                     f"{features.shape} and {labels.shape}.")
  if not np.all(np.isfinite(features)):
    raise ValueError("plot_embedding: features hold NaN or infinite values.")
  present = np.unique(labels)
  if max_per_class is None:
    max_per_class = max(1, max_points // max(len(present), 1))
  subset = balanced_subset(labels, max_per_class, seed)
  if len(subset) < MIN_POINTS:
    raise ValueError(f"plot_embedding: {len(subset)} samples; t-SNE needs at least "
                     f"{MIN_POINTS}.")
  points = embed_2d(features[subset], seed)
  labels = labels[subset]
  names = (list(class_names) if class_names is not None
           else [f"class {c}" for c in range(int(labels.max()) + 1)])

  fig = Figure(figsize=(7.5, 6.0) if len(present) <= _LEGEND_MAX_CLASSES else (8.0, 8.0))
  FigureCanvasAgg(fig)
  ax = fig.add_subplot()
  colours = _class_colours(len(present))
  size = 12 if len(subset) < 500 else 6
  for i, label in enumerate(present):
    at = labels == label
    name = names[label] if label < len(names) else f"class {label}"
    ax.scatter(points[at, 0], points[at, 1], s=size, color=colours[i], label=name,
               edgecolors="none")
    if len(present) > _LEGEND_MAX_CLASSES:
      x, y = np.median(points[at], axis=0)
      ax.text(x, y, str(label), fontsize=6, ha="center", va="center",
              bbox={"boxstyle": "round,pad=0.1", "fc": "white", "alpha": 0.6, "lw": 0})
  if len(present) <= _LEGEND_MAX_CLASSES:
    ax.legend(fontsize=7, markerscale=1.5, loc="center left", bbox_to_anchor=(1.0, 0.5),
              frameon=False)
  ax.set_xticks([])
  ax.set_yticks([])
  counts = (f"t-SNE of {len(subset)} samples, {len(present)} classes, "
            f"≤ {max_per_class} per class (seed {seed})")
  ax.set_title(f"{title}\n{counts}" if title else counts, fontsize=9)
  fig.tight_layout()
  out_dir = os.path.dirname(os.path.abspath(out_path))
  os.makedirs(out_dir, exist_ok=True)
  fig.savefig(out_path, dpi=100)
  return out_path
