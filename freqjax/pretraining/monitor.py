"""A cheap kNN monitor of a pretraining run: labels are used only to watch, never to train.

Every `monitor.knn_every_epochs` the query encoder (inference mode) embeds a fixed,
seeded slice of the training split (the memory bank) and of the test split (the queries),
and weighted cosine kNN (`freqjax.evaluation.knn`) gives a top-1 accuracy: a rising curve
says the representation is learning long before a linear evaluation would.
"""
import ml_collections
import numpy as np

from freqjax.data import pipeline, readers
from freqjax.evaluation import knn
from freqjax.evaluation.features import extract_features


class KnnMonitor:
  """`monitor(encoder, variables) -> {"monitor/knn_top1": percent}` on fixed slices."""

  def __init__(self, config: ml_collections.ConfigDict, train: pipeline.Dataset):
    m = config.monitor
    test = readers.load_dataset(config.data.format, config.data.path, config.data.test_split,
                                num_frames=config.data.num_frames,
                                num_classes=config.data.num_classes)
    rng = np.random.default_rng(config.seed)
    self.bank = _slice(train, rng, m.knn_train_samples)
    self.queries = _slice(test, rng, m.knn_test_samples)
    self.config = config

  def __call__(self, encoder, variables: dict) -> dict[str, float]:
    c = self.config
    embed = lambda dataset: extract_features(
        encoder, variables, dataset, batch_size=c.monitor.knn_batch_size, stream=c.data.stream,
        prefetch=c.data.prefetch)
    bank_x, bank_y = embed(self.bank)
    query_x, query_y = embed(self.queries)
    result = knn.knn_evaluate(bank_x, bank_y, query_x, query_y,
                              num_classes=c.data.num_classes,
                              k=min(c.monitor.knn_k, len(bank_y)),
                              temperature=c.monitor.knn_temperature)
    return {"monitor/knn_top1": float(result["test_top1"])}


def _slice(dataset: pipeline.Dataset, rng: np.random.Generator, size: int) -> pipeline.Subset:
  """A seeded random `size` rows of `dataset` (all of them if it is smaller), sorted."""
  count = min(size, len(dataset))
  return pipeline.Subset(dataset, np.sort(rng.permutation(len(dataset))[:count]))
