"""A dataset over in-memory arrays (the pipeline's `Dataset` protocol), for tests."""
import numpy as np


class ArrayDataset:
  """Rows of `x` with their `labels`, read as given."""

  def __init__(self, x: np.ndarray, labels: np.ndarray):
    self.x, self.labels = x, labels

  def __len__(self) -> int:
    return len(self.labels)

  def read(self, indices) -> np.ndarray:
    return self.x[np.asarray(indices)]
