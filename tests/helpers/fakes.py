"""Stand-ins for what the tests cannot have here (the CLIP text model)."""
import dataclasses

import numpy as np


@dataclasses.dataclass
class FakeTextEncoder:
  """Stands in for the CLIP text model: random features of the right shapes, instantly."""
  name: str = "fake-text-encoder"
  random_init: bool = True

  def encode(self, sentences, batch_size, dtype, progress):
    del batch_size, progress
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(sentences), 512))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    mask = np.zeros((len(sentences), 6), bool)
    mask[:, :4] = True
    words = rng.normal(size=(len(sentences), 6, 512)) * mask[..., None]
    return emb.astype(dtype), words.astype(dtype), mask
