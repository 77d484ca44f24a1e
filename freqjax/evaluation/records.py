"""What each evaluation protocol records besides its test scores: `results.json["extra"]`.

One frozen dataclass per protocol holds its settings and secondary numbers, typed and
documented: `LinearProbeRecord` (with `MinivalSelection`, the second probe whose epoch is
chosen on minival) for `linear` / `transfer`, `KnnRecord` for `knn`, `FinetuneRecord` for
`semi` / `finetune`. `RunRecord` holds what every protocol records after its own fields
(where the encoder and the data came from, and the wall time). `extra_json` is the one way
they become `results.json["extra"]`: the protocol's fields in order, then the run's, each
field under its own name.

Accuracies are in percent and epochs 1-based throughout.
"""
import dataclasses
from typing import Any, ClassVar

from freqjax.evaluation import report


class _Record:
  """A dataclass whose fields are, by name, its part of `results.json["extra"]`."""
  # Fields written only when set: None means "not recorded" (left out of the JSON).
  OPTIONAL: ClassVar[tuple[str, ...]] = ()

  def to_json(self) -> dict[str, Any]:
    """The fields, in order, as plain JSON types (a nested record converted too).

    An `OPTIONAL` field that is None is left out; any other None is written as null.
    """
    fields = {}
    for field in dataclasses.fields(self):
      value = getattr(self, field.name)
      if value is None and field.name in self.OPTIONAL:
        continue
      fields[field.name] = value.to_json() if isinstance(value, _Record) else value
    return report.to_jsonable(fields)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MinivalSelection(_Record):
  """A second linear probe, trained on train minus a stratified minival part, whose epoch
  is chosen on minival (never on test): how far an honest choice of epoch is from the
  reported last epoch.

  Attributes:
    note: what this record is, for the reader of results.json.
    num_train: samples this probe trained on (the training split minus minival).
    num_minival: samples held out to choose the epoch.
    minival_epoch: the first epoch with the highest minival top-1.
    minival_top1_at_minival_epoch: minival top-1 at `minival_epoch`.
    test_top1_at_minival_epoch: test top-1 at `minival_epoch`.
    test_top5_at_minival_epoch: test top-5 at `minival_epoch`.
    test_top1_last_epoch: this probe's test top-1 after its last epoch.
    minival_curve: `(epochs,)` minival top-1 after each epoch.
  """
  note: str = ("a second probe trained on train minus a stratified minival split; the "
               "epoch is chosen on minival (never on test). Compare its epoch and test "
               "accuracy with the reported last epoch.")
  num_train: int
  num_minival: int
  minival_epoch: int
  minival_top1_at_minival_epoch: float
  test_top1_at_minival_epoch: float
  test_top5_at_minival_epoch: float
  test_top1_last_epoch: float
  minival_curve: list[float]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LinearProbeRecord(_Record):
  """The `linear` / `transfer` protocol: a probe on frozen features, trained on the whole
  training split; its last epoch is the headline.

  Attributes:
    reported: what the headline accuracy is (the recipe's last epoch; whether the features
      were standardised).
    test_top1_last_epoch: test top-1 after the last epoch (the headline).
    test_top5_last_epoch: test top-5 after the last epoch.
    best_test_top1_over_epochs: the highest test top-1 over epochs (selected on test).
    best_test_top1_epoch: the epoch of that maximum.
    best_over_epochs_note: why the best-over-epochs number is not an honest estimate.
    num_train: samples the probe trained on.
    feature_dim: D, the encoder's feature size.
    train_feature_norm_mean: mean L2 norm of the training features (the recipe's probe,
      raw features at a fixed learning rate, depends on their scale).
    feature_seconds: wall time (s) of extracting the train and test features.
    steps_per_epoch: probe SGD steps per epoch.
    curve: per-epoch lists `{"epoch", "lr", "train_loss", "train_top1", "minival_top1",
      "test_top1", "test_top5"}`, each `(epochs,)` (`minival_top1` None: no minival here).
    minival_selection: the probe whose epoch is chosen on minival (`MinivalSelection`);
      absent with `linear.minival_size` 0.
  """
  OPTIONAL: ClassVar[tuple[str, ...]] = ("minival_selection",)
  RECIPE: ClassVar[str] = ("test top-1/top-5 after the last epoch of a probe trained on the "
                           "whole training split (the SkeletonCLR/AimCLR recipe)")
  STANDARDIZED: ClassVar[str] = (", on features standardised with the training split's "
                                 "mean and standard deviation (not the recipe: "
                                 "scale-invariant)")

  reported: str
  test_top1_last_epoch: float
  test_top5_last_epoch: float
  best_test_top1_over_epochs: float
  best_test_top1_epoch: int
  best_over_epochs_note: str = ("selected on test: only for comparison with published "
                                "tables that report it, not an honest estimate")
  num_train: int
  feature_dim: int
  train_feature_norm_mean: float
  feature_seconds: float
  steps_per_epoch: int
  curve: dict[str, list]
  minival_selection: MinivalSelection | None = None

  @classmethod
  def reported_for(cls, standardize: bool) -> str:
    """The `reported` text of a probe on raw or standardised features."""
    return cls.RECIPE + (cls.STANDARDIZED if standardize else "")


@dataclasses.dataclass(frozen=True, kw_only=True)
class KnnRecord(_Record):
  """The `knn` protocol: weighted cosine kNN of the test features among the training ones.

  Attributes:
    reported: what the headline accuracy is.
    k: neighbours voting.
    temperature: the vote weight is `exp(cosine / temperature)`.
    num_train: training samples searched.
  """
  reported: str = "weighted cosine kNN on L2-normalised frozen features"
  k: int
  temperature: float
  num_train: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class FinetuneRecord(_Record):
  """The `semi` / `finetune` protocols: encoder and a new linear head trained together on
  a class-balanced label subset (or the whole training split); the last epoch is reported.

  Attributes:
    reported: what the headline accuracy is (no model selection).
    encoder_mode: `eval` (running BatchNorm statistics, no dropout) or `train`.
    label_fraction: the fraction of each class's training samples labelled, in (0, 1].
    num_labelled: samples fine-tuned on.
    num_labelled_per_class: `(C,)` of them per class.
    batch_size: the global batch size.
    num_devices: devices the training step ran on.
    parallel_backend: `pmap` or `shard_map`.
    steps_per_epoch: training steps per epoch (the remainder of the samples is dropped).
    num_steps: training steps taken.
    train_seconds: wall time (s) of the training loop, compilation included.
    curve: per-epoch lists `{"epoch", "lr", "train_loss", "train_top1"}`, each `(epochs,)`.
    labelled_samples: the labelled samples' names (their indices in the training split
      when it has no names); absent with `label_fraction` 1 (every sample).
  """
  OPTIONAL: ClassVar[tuple[str, ...]] = ("labelled_samples",)

  reported: str = "test accuracy after the last epoch (no model selection)"
  encoder_mode: str
  label_fraction: float
  num_labelled: int
  num_labelled_per_class: tuple[int, ...]
  batch_size: int
  num_devices: int
  parallel_backend: str
  steps_per_epoch: int
  num_steps: int
  train_seconds: float
  curve: dict[str, list[float]]
  labelled_samples: tuple[str, ...] | tuple[int, ...] | None = None


ProtocolRecord = LinearProbeRecord | KnnRecord | FinetuneRecord


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunRecord(_Record):
  """What every protocol records after its own fields: the encoder, the data, the time.

  Attributes:
    encoder: where the encoder weights came from (a checkpoint and its step, a PyTorch
      file, or the random initialisation and its seed).
    seconds: wall time (s) of the protocol, feature extraction or training included.
    num_train_split: samples in the training split (before any label subset or minival).
    train_split: the training split's name.
    test_split: the test split's name.
    pretrain_config: the pretraining config (`config.json`), or None (a PyTorch
      checkpoint, or a random init without one).
    pretrain_config_path: where it was read from, or None.
  """
  encoder: str
  seconds: float
  num_train_split: int
  train_split: str
  test_split: str
  pretrain_config: dict | None
  pretrain_config_path: str | None


def extra_json(protocol: ProtocolRecord, run: RunRecord) -> dict[str, Any]:
  """`results.json["extra"]`: the protocol's fields, then the run's (JSON types)."""
  return protocol.to_json() | run.to_json()
