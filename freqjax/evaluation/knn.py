"""Weighted cosine k-nearest-neighbour classification on fixed features.

The kNN monitor of InstDisc (Wu et al. 2018) and the MoCo/SkeletonCLR-style codebases:
features are L2-normalised, each test sample finds its k most similar training samples
by cosine similarity s, and class c scores `Σ exp(s / τ)` over those neighbours of class c.
Here the weights are divided by the nearest neighbour's (`exp((s - s_max) / τ)`, so small
τ cannot overflow float32) and each row is normalised to sum to 1; both are per-row
positive factors, so the ranking of classes and every accuracy are those of the
unnormalised form.

Test rows are processed in chunks (`lax.map` inside one jit), so only a
`(chunk, N_train)` similarity block exists at a time: NTU-60 xsub's 16k × 40k fits.
"""
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from freqjax.evaluation import metrics
from freqjax.normalize import l2_normalize


def knn_scores(train_features, train_labels, test_features, *, num_classes: int,
               k: int = 200, temperature: float = 0.1, chunk_size: int = 256) -> np.ndarray:
  """Class scores of each test sample from its k nearest training samples.

  Args:
    train_features: `(N_train, D)` float features (normalised here).
    train_labels: `(N_train,)` int labels.
    test_features: `(N_test, D)` float features.
    num_classes: C.
    k: neighbours per test sample (MoCo's monitor: 200), at most N_train.
    temperature: τ of the weights `exp(s / τ)` (MoCo's monitor: 0.1; InstDisc: 0.07).
    chunk_size: test rows per similarity block.

  Returns:
    `(N_test, C)` float32 scores, each row summing to 1 (the weighted vote shares).
  """
  train_features = np.asarray(train_features)
  test_features = np.asarray(test_features)
  train_labels = np.asarray(train_labels)
  if train_features.ndim != 2 or test_features.ndim != 2:
    raise ValueError(f"features must be (N, D); got train {train_features.shape}, "
                     f"test {test_features.shape}.")
  if train_features.shape[1] != test_features.shape[1]:
    raise ValueError(f"train features have D={train_features.shape[1]} but test features "
                     f"have D={test_features.shape[1]}.")
  metrics.check_labels(train_labels, train_features.shape[0], num_classes, "train_features")
  for name, x in (("train", train_features), ("test", test_features)):
    if not np.all(np.isfinite(x)):
      raise ValueError(f"{name} features contain NaN or inf.")
  if not 1 <= k <= train_features.shape[0]:
    raise ValueError(f"k must be in [1, N_train={train_features.shape[0]}]; got {k}.")
  if temperature <= 0:
    raise ValueError(f"temperature must be > 0; got {temperature}.")

  num_test = test_features.shape[0]
  num_chunks = -(-num_test // chunk_size)
  padded = np.zeros((num_chunks * chunk_size, test_features.shape[1]), np.float32)
  padded[:num_test] = test_features
  scores = _knn_scores_chunked(
      jnp.asarray(train_features, jnp.float32), jnp.asarray(train_labels, jnp.int32),
      jnp.asarray(padded).reshape(num_chunks, chunk_size, -1),
      num_classes=num_classes, k=k, temperature=temperature)
  return np.asarray(scores).reshape(-1, num_classes)[:num_test]


@jax.jit(static_argnames=("num_classes", "k"))
def _knn_scores_chunked(train_x, train_y, test_chunks, *, num_classes, k, temperature):
  train_x = l2_normalize(train_x)

  def one_chunk(test_x):
    similarity = l2_normalize(test_x) @ train_x.T  # (chunk, N_train)
    top_sim, top_idx = jax.lax.top_k(similarity, k)  # (chunk, k), most similar first
    # Without the barrier XLA:CPU fuses the vote into the matmul/top-k and recomputes it,
    # an order of magnitude slower on NTU-sized chunks.
    top_sim, top_idx = jax.lax.optimization_barrier((top_sim, top_idx))
    weights = jnp.exp((top_sim - top_sim[:, :1]) / temperature)
    votes = jax.nn.one_hot(train_y[top_idx], num_classes) * weights[..., None]
    scores = votes.sum(axis=1)
    return scores / scores.sum(axis=-1, keepdims=True)

  return jax.lax.map(one_chunk, test_chunks)


def knn_evaluate(train_features, train_labels, test_features, test_labels, *,
                 num_classes: int, k: int = 200, temperature: float = 0.1,
                 chunk_size: int = 256) -> dict[str, Any]:
  """kNN top-1/top-5 (percent) on the test split; see `knn_scores` for the arguments.

  Returns:
    `{"test_top1", "test_top5", "test_scores": (N_test, C), "k", "temperature",
    "num_train", "num_test"}`.
  """
  metrics.check_labels(test_labels, np.shape(test_features)[0], num_classes, "test_features")
  scores = knn_scores(train_features, train_labels, test_features, num_classes=num_classes,
                      k=k, temperature=temperature, chunk_size=chunk_size)
  accuracies = metrics.topk_accuracies(scores, test_labels, (1, 5))
  return {"test_top1": accuracies["top1"], "test_top5": accuracies["top5"],
          "test_scores": scores, "k": k, "temperature": temperature,
          "num_train": int(np.asarray(train_features).shape[0]),
          "num_test": int(scores.shape[0])}
