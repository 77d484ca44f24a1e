"""Feature Modulation loss: KL between noisy skeleton-to-text and text-to-text similarities.

docs/method.md, "Feature Modulation". The skeleton embedding `z_q` (student) and the text
embedding `z_t` (teacher) of each sample are compared with the same candidate texts
`S = [z_t of the batch; text queue]`; the student's similarity distribution is pulled
towards the teacher's by a KL divergence with separate temperatures (CMD / ActCLR style).
The Modality Harmonizer's loss `L_H` is this same function with the harmonizer's output
`z_h` in place of `z_q`.
"""
import jax
import jax.numpy as jnp


def kl_div_batchmean(student_logits: jax.Array, teacher_logits: jax.Array) -> jax.Array:
  """`KL(softmax(teacher) ‖ softmax(student))` summed over classes, averaged over rows.

  Equals PyTorch `F.kl_div(log_softmax(student), softmax(teacher), reduction='batchmean')`.
  Both sides go through `log_softmax`, so very peaked teachers (small τ_t) stay finite.

  Args:
    student_logits: `(B, C)` logits whose distribution is trained.
    teacher_logits: `(B, C)` target logits (no stop-gradient here: the caller decides).

  Returns:
    Scalar loss.
  """
  log_p_student = jax.nn.log_softmax(student_logits, axis=-1)
  log_p_teacher = jax.nn.log_softmax(teacher_logits, axis=-1)
  p_teacher = jnp.exp(log_p_teacher)
  return jnp.mean(jnp.sum(p_teacher * (log_p_teacher - log_p_student), axis=-1))


def _row_noise(key: jax.Array, row_ids: jax.Array, dim: int, dtype) -> jax.Array:
  """`(n, dim)` N(0, 1) rows, row i drawn from `fold_in(key, row_ids[i])`."""
  return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (dim,), dtype))(row_ids)


def feature_modulation_logits(z_q: jax.Array,
                              z_t: jax.Array,
                              text_queue: jax.Array,
                              key: jax.Array,
                              noise_std: float = 0.01,
                              *,
                              batch_texts: jax.Array | None = None,
                              row_ids: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
  """Noisy similarities of the skeleton (student) and text (teacher) embeddings to the texts.

  The candidates `S = [batch_texts; text_queue]` are frozen-text targets, so no gradient
  reaches `z_t`, `batch_texts` or the queue by either side; only `z_q` is trained.

  Data parallelism: each device passes its own rows (`z_q`, `z_t`), the texts of the whole
  global batch as `batch_texts` (`all_gather(z_t, axis, tiled=True)`), the same `key` on
  every device, and the global indices of its rows as `row_ids`
  (`axis_index * B + arange(B)`); the mean of the per-device losses then equals the loss of
  one device holding the global batch, noise included.

  Args:
    z_q: `(B, E)` L2-normalised skeleton embeddings (batch, embedding; E = 512).
    z_t: `(B, E)` L2-normalised text embeddings of the same samples.
    text_queue: `(K_t, E)` text embeddings of earlier batches.
    key: PRNG key of the noise. Split in two (student, teacher); the noise of row i is drawn
      from `fold_in(half, row_ids[i])`, so a sample's noise does not depend on how the batch
      is sharded.
    noise_std: σ of the Gaussian noise `n₁, n₂ ~ N(0, σ²)` added to `z_q` and `z_t`.
    batch_texts: `(B_g, E)` texts of the whole batch, first block of the candidates;
      `z_t` when None (single device).
    row_ids: `(B,)` int, global row indices of `z_q`/`z_t`; `arange(B)` when None.

  Returns:
    `(l_b, l_a)`, each `(B, B_g + K_t)`: `l_b = (z_q + n₁) Sᵀ` and `l_a = sg((z_t + n₂) Sᵀ)`,
    before temperatures.
  """
  if batch_texts is None:
    batch_texts = z_t
  if row_ids is None:
    row_ids = jnp.arange(z_q.shape[0])
  candidates = jax.lax.stop_gradient(jnp.concatenate([batch_texts, text_queue], axis=0))
  key_student, key_teacher = jax.random.split(key)
  noise_student = noise_std * _row_noise(key_student, row_ids, z_q.shape[-1], z_q.dtype)
  noise_teacher = noise_std * _row_noise(key_teacher, row_ids, z_t.shape[-1], z_t.dtype)
  l_b = (z_q + noise_student) @ candidates.T
  l_a = jax.lax.stop_gradient((z_t + noise_teacher) @ candidates.T)
  return l_b, l_a


def feature_modulation_loss(z_q: jax.Array,
                            z_t: jax.Array,
                            text_queue: jax.Array,
                            key: jax.Array,
                            tau_s: float = 0.1,
                            tau_t: float = 0.05,
                            noise_std: float = 0.01,
                            *,
                            batch_texts: jax.Array | None = None,
                            row_ids: jax.Array | None = None) -> jax.Array:
  """`L_FM = kl_div_batchmean(l_b / τ_s, l_a / τ_t)`.

  docs/method.md, "Feature Modulation". Also the Modality Harmonizer's `L_H`, called with
  the harmonizer output `z_h` as `z_q` (with a different `key`, e.g. `fold_in(key, 1)`, so
  its noise is not FM's).

  Args:
    z_q: `(B, E)` L2-normalised skeleton (or harmonizer) embeddings, E = 512.
    z_t: `(B, E)` L2-normalised text embeddings of the same samples.
    text_queue: `(K_t, E)` text queue.
    key: PRNG key of the noise (see `feature_modulation_logits`).
    tau_s: student temperature τ_s.
    tau_t: teacher temperature τ_t.
    noise_std: σ of the embedding noise; 0 gives the noiseless loss.
    batch_texts: `(B_g, E)` texts of the global batch under data parallelism (see
      `feature_modulation_logits`); `z_t` when None.
    row_ids: `(B,)` global row indices of this device's rows; `arange(B)` when None.

  Returns:
    Scalar loss, the mean over this call's rows; its gradient reaches `z_q` only.
  """
  l_b, l_a = feature_modulation_logits(z_q, z_t, text_queue, key, noise_std,
                                       batch_texts=batch_texts, row_ids=row_ids)
  return kl_div_batchmean(l_b / tau_s, l_a / tau_t)
