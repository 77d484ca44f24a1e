"""MoCo arithmetic: InfoNCE over a queue of keys, the key encoder's EMA, the ring-buffer queue.

Pure functions of arrays and pytrees (docs/method.md, "Instance contrast"). The train
step composes them; nothing here holds state.
"""
from typing import Any

import jax
import jax.numpy as jnp


def info_nce(q: jax.Array,
             k: jax.Array,
             queue: jax.Array,
             temperature: float = 0.2) -> tuple[jax.Array, jax.Array]:
  """MoCo's InfoNCE: each query against its own key (positive) and the queue (negatives).

  `k` and `queue` are targets: no gradient flows into them (MoCo's key branch is `no_grad`).

  Args:
    q: `(B, D)` L2-normalised queries (batch, embedding).
    k: `(B, D)` L2-normalised keys; row i is the positive of `q[i]`.
    queue: `(K, D)` L2-normalised keys of earlier batches (negatives).
    temperature: τ, the logits are cosine similarities divided by it.

  Returns:
    `(loss, logits)`: the scalar mean cross-entropy with target 0, and the logits
    `[q·k, q·queueᵀ] / τ` of shape `(B, 1 + K)` (column 0 is the positive).
  """
  k = jax.lax.stop_gradient(k)
  queue = jax.lax.stop_gradient(queue)
  positive = jnp.sum(q * k, axis=-1, keepdims=True)
  negatives = q @ queue.T
  logits = jnp.concatenate([positive, negatives], axis=-1) / temperature
  loss = -jnp.mean(jax.nn.log_softmax(logits, axis=-1)[:, 0])
  return loss, logits


def contrastive_accuracy(logits: jax.Array) -> jax.Array:
  """Top-1 accuracy of `(B, 1 + K)` InfoNCE logits: the positive strictly beats every
  negative. A tie counts as wrong, so a collapsed embedding (all logits equal) scores 0,
  not 1.
  """
  return jnp.mean(logits[:, 0] > jnp.max(logits[:, 1:], axis=-1))


def momentum_update(target_params: Any, online_params: Any, momentum: float | jax.Array) -> Any:
  """EMA of the key encoder over pytrees: `m · target + (1 − m) · online`, leaf by leaf.

  Args:
    target_params: key-encoder pytree (θ_k).
    online_params: query-encoder pytree (θ_q) of the same structure.
    momentum: m in [0, 1] (0.999 in the recipe); a python float or a traced scalar.

  Returns:
    The new θ_k, with the structure and dtypes of `target_params`.
  """
  def ema(target, online):
    return (momentum * target + (1.0 - momentum) * online).astype(target.dtype)

  return jax.tree_util.tree_map(ema, target_params, online_params)


def enqueue(queue: jax.Array,
            pointer: jax.Array | int,
            items: jax.Array,
            config_field: str = "moco.queue_size") -> tuple[jax.Array, jax.Array]:
  """Writes `items` into the ring buffer `queue` at rows `pointer .. pointer + n − 1`.

  Because `K % n == 0` and the pointer only ever advances by `n`, a write never straddles
  the end of the buffer, so one `dynamic_update_slice` suffices.

  Args:
    queue: `(K, D)` ring buffer (queue length, embedding).
    pointer: int32 scalar, the row where the next write starts (a multiple of `n`).
    items: `(n, D)` rows to write, e.g. the keys of the whole global batch in device order.
    config_field: the config field that sets `K`, named in the error when `K % n != 0`
      (`moco.queue_size` for the skeleton queue, `fm.text_queue_size` for the text queue).

  Returns:
    `(queue, pointer)`: the updated buffer and `(pointer + n) % K` as int32.

  Raises:
    ValueError: at trace time, if the shapes disagree or `K` is not a multiple of `n`.
  """
  if queue.ndim != 2 or items.ndim != 2 or queue.shape[1] != items.shape[1]:
    raise ValueError(f"enqueue: queue {queue.shape} and items {items.shape} must be (K, D) and "
                     f"(n, D) with the same D")
  size, n = queue.shape[0], items.shape[0]
  if n == 0:
    raise ValueError(f"enqueue: no items to write into the queue set by {config_field}")
  if size % n != 0:
    raise ValueError(
        f"queue size {size} is not a multiple of the {n} items enqueued per step (the global "
        f"batch): set {config_field} to a multiple of {n} (e.g. {max(n, size // n * n)}) or "
        f"change the batch size")
  pointer = jnp.asarray(pointer, jnp.int32)
  queue = jax.lax.dynamic_update_slice(queue, items.astype(queue.dtype), (pointer, jnp.int32(0)))
  return queue, (pointer + n) % size
