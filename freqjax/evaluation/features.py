"""Frozen-encoder features of a whole dataset: one jitted forward, every sample once.

Used by the evaluation protocols and by the pretraining kNN monitor.
"""
import functools
import math

import jax
import numpy as np
import tqdm

from freqjax.data import pipeline, streams
from freqjax.models import STGCN


@functools.lru_cache(maxsize=8)
def _feature_fn(encoder: STGCN, stream: str):
  @jax.jit
  def features(variables, x):
    h, _ = encoder.apply(variables, streams.to_stream(x, stream), train=False)
    return h
  return features


def extract_features(encoder: STGCN, variables: dict, dataset: pipeline.Dataset, *,
                     batch_size: int, stream: str, prefetch: int = 2,
                     desc: str | None = None) -> tuple[np.ndarray, np.ndarray]:
  """Pooled encoder features of every sample, inference mode, one jitted forward.

  Args:
    encoder: the ST-GCN.
    variables: its `{"params", "batch_stats"}`.
    dataset: the samples (`x (N, 3, T, V, M)` joints as `dataset.read` returns them).
    batch_size: samples per forward; the last batch is padded and its padding masked.
    stream: `data.stream`, applied on device before the encoder.
    prefetch: batches read ahead in a background thread.
    desc: a progress-bar label (None: no bar).

  Returns:
    `(features (N, D) float32, labels (N,) int64)`, row i for dataset row i.
  """
  forward = _feature_fn(encoder, stream)
  num_samples = len(dataset)
  outputs, rows = [], []
  batches = pipeline.prefetch(
      pipeline.eval_batches(dataset, batch_size, num_devices=1, process_index=0,
                            process_count=1), size=prefetch)
  bar = tqdm.tqdm(total=math.ceil(num_samples / batch_size), desc=desc, unit="batch",
                  disable=desc is None, leave=False, dynamic_ncols=True)
  with batches:
    for batch in batches:
      # Dispatch only; the host reads all outputs at the end.
      outputs.append(forward(variables, batch["x"][0]))
      rows.append(batch["index"][0][batch["mask"][0]])
      bar.update(1)
  bar.close()
  features = np.zeros((num_samples, encoder.hidden_dim), np.float32)
  seen = np.zeros(num_samples, np.int64)
  for h, index in zip(jax.device_get(outputs), rows):
    features[index] = np.asarray(h)[:len(index)]
    np.add.at(seen, index, 1)
  if not np.all(seen == 1):
    raise RuntimeError(f"feature extraction saw {np.sum(seen == 0)} samples never and "
                       f"{np.sum(seen > 1)} more than once; the batching is broken.")
  if not np.all(np.isfinite(features)):
    raise FloatingPointError("the encoder produced NaN/inf features: the checkpoint is "
                             "broken or the data holds extreme values.")
  return features, np.asarray(dataset.labels, np.int64)
