"""Modality Harmonizer: skeleton frames attend to the words of the sample's text.

docs/method.md, "Modality Harmonizer" (its design is an open choice). Frame features
(query) and word-level CLIP features (key/value) are projected to a common width,
combined by multi-head cross-attention with a residual and a LayerNorm, pooled over
frames and projected to the 512-d text space. Its output `z_h` is aligned to the sentence
embedding `z_t` by the Feature Modulation KL: the loss `L_H` is
`feature_modulation.feature_modulation_loss(z_h, z_t, text_queue, key, ...)` (no separate
function). Training-time only: inference is skeleton-only.
"""
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from freqjax.models import initializers
from freqjax.models.precision import at_least_float32
from freqjax.normalize import l2_normalize


class ModalityHarmonizer(nn.Module):
  """Cross-attention from skeleton frames to text words, `-> (N, out_dim)` L2-normalised.

  A row whose `word_mask` is all False (no words) gets a zero attention output, so its
  result is `LayerNorm(frames)` pooled and projected: finite, and independent of the
  padded word features. Masked word features are zeroed before use, so padding never
  influences the output (not even NaN/inf padding).

  Attributes:
    dim: width d of the attention (queries, keys, values and the residual stream).
    num_heads: attention heads; must divide `dim`.
    out_dim: output width (512, CLIP's embedding).
    dropout: dropout rate on the attention weights (used when `train=True`, rng 'dropout').
    init_scheme: `model.init` (`freqjax.models.initializers`): every dense kernel, those
      of the attention's query/key/value/output projections included, N(0, 0.02²) with
      zero bias (`"reference"`, as the reference's `weights_init` treats linear layers),
      or Flax's lecun-normal (`"flax"`); the LayerNorm starts at scale 1, shift 0 in both.
    dtype: the dtype of the projections and the attention (`model.compute_dtype`; None:
      the inputs'). Parameters, the softmax and the output stay float32.
  """
  dim: int = 256
  num_heads: int = 8
  out_dim: int = 512
  dropout: float = 0.0
  init_scheme: str = "reference"
  dtype: Any = None

  @nn.compact
  def __call__(self,
               frame_features: jax.Array,
               word_features: jax.Array,
               word_mask: jax.Array,
               train: bool = False) -> jax.Array:
    """Harmonised embedding of each sample.

    Args:
      frame_features: `(N, T', C)` the encoder's last feature map pooled over joints and
        persons (batch, frames, channels).
      word_features: `(N, L, 512)` CLIP last hidden states (batch, tokens, width).
      word_mask: `(N, L)` bool, True for real tokens, False for padding.
      train: enables attention dropout.

    Returns:
      `(N, out_dim)` L2-normalised embeddings.
    """
    if self.dim % self.num_heads:
      raise ValueError(f"ModalityHarmonizer: dim {self.dim} is not divisible by num_heads "
                       f"{self.num_heads}; change harmonizer.num_heads or harmonizer.dim")
    if word_mask.shape != word_features.shape[:2]:
      raise ValueError(f"ModalityHarmonizer: word_mask {word_mask.shape} does not match word "
                       f"features {word_features.shape} (want (N, L) for (N, L, E))")
    word_mask = word_mask.astype(bool)
    word_features = jnp.where(word_mask[..., None], word_features, 0.0)
    inits = dict(kernel_init=initializers.kernel(self.init_scheme, nn.initializers.lecun_normal()),
                 bias_init=initializers.bias(self.init_scheme, nn.initializers.zeros))
    query = nn.Dense(self.dim, dtype=self.dtype, name="frame_proj", **inits)(frame_features)
    memory = nn.Dense(self.dim, dtype=self.dtype, name="word_proj", **inits)(word_features)
    attended = nn.MultiHeadDotProductAttention(
        num_heads=self.num_heads, qkv_features=self.dim, out_features=self.dim,
        dropout_rate=self.dropout, dtype=self.dtype, force_fp32_for_softmax=True,
        name="attention", **inits)(
            query, memory, mask=word_mask[:, None, None, :], deterministic=not train)
    # Flax turns an all-False row into uniform attention over the padding; silence it.
    has_words = jnp.any(word_mask, axis=-1)[:, None, None]
    attended = jnp.where(has_words, attended, 0.0)
    x = nn.LayerNorm(name="norm")(query + attended)
    x = jnp.mean(x, axis=1)
    x = nn.Dense(self.out_dim, dtype=self.dtype, name="out_proj", **inits)(x)
    return l2_normalize(at_least_float32(x))
