"""Evaluation configs: `python eval.py --config configs/eval.py:<variant> --workdir runs/x`.

Variants (docs/method.md, "Evaluation protocols"): `linear` (frozen encoder, linear
probe), `knn` (cosine kNN on frozen features), `semi1` / `semi10` (1 % / 10 % of the
labels per class, fine-tune all layers), `finetune` (all labels, all layers), `transfer`
(linear evaluation on another dataset: set `--config.data.path`, e.g. PKU-MMD II for an
NTU-pretrained encoder).

Where the encoder comes from: `init_from` if set (a freqjax workdir, a PyTorch ST-GCN
checkpoint `.pt/.pth/.tar/.npz`, or `random` for a randomly initialised encoder, the
baseline), else the latest checkpoint in `--workdir`. The model and the data settings are
read from the pretraining config (`config.json` of the workdir the encoder comes from);
every `data.*` / `model.*` field left at None here is inherited from it, anything set here
wins. Without a pretraining config (a PyTorch checkpoint) the model is SkeletonCLR's
ST-GCN without FreST and `data.path` must be given.

Reports go to `workdir/eval/<name>/` (`name` defaults to the protocol: `linear`, `knn`,
`semi_1pct`, `semi_10pct`, `finetune`, `transfer`).
"""
import ml_collections
from ml_collections import config_dict

from configs import pretrain as pretrain_configs

# The variants `get_config` takes, and the protocol each one runs (evaluation.run checks
# `protocol` against the values).
VARIANTS = {"linear": "linear", "knn": "knn", "semi1": "semi", "semi10": "semi",
            "finetune": "finetune", "transfer": "transfer"}


def inherited_model_fields() -> ml_collections.ConfigDict:
  """`model.*` placeholders (typed None) for every field of the pretraining config's model.

  Derived, not listed, so that a model field added to configs/pretrain.py is inherited by
  evaluation without touching this file.
  """
  model = ml_collections.ConfigDict()
  for name, value in pretrain_configs.base_config().model.items():
    model[name] = config_dict.placeholder(type(value))
  return model


def base_config() -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.protocol = "linear"  # linear | knn | semi | finetune | transfer
  c.name = ""  # report folder under workdir/eval/; "" = the protocol's default
  c.init_from = ""  # "" = the workdir's latest checkpoint; a workdir, a .pt/.npz, or "random"
  c.seed = 0  # minival split, label subsets, probe/head init, shuffling, random-init encoder
  # Class names in the report: synthetic | ntu60 | ntu120 | pku_mmd | "" (none: class 0, ...);
  # None guesses from the data (a synthetic manifest, or 60/120/51 classes).
  c.class_names = config_dict.placeholder(str)

  # None = inherited from the pretraining config (see the module docstring).
  c.data = ml_collections.ConfigDict()
  c.data.format = config_dict.placeholder(str)  # aimclr | pyskl | ctrgcn
  c.data.path = config_dict.placeholder(str)
  c.data.split = config_dict.placeholder(str)  # the labelled training split
  c.data.test_split = config_dict.placeholder(str)
  c.data.num_frames = config_dict.placeholder(int)
  c.data.num_classes = config_dict.placeholder(int)
  c.data.stream = config_dict.placeholder(str)  # joint | bone | motion: the encoder's input
  c.data.prefetch = 2

  # Every model field of the pretraining config, as a placeholder: None = inherited from
  # the run's config.json (or the class default for a PyTorch checkpoint).
  c.model = inherited_model_fields()

  # Frozen-encoder feature extraction (linear, knn, transfer, and the fine-tuned test pass).
  c.parallel = ml_collections.ConfigDict()
  c.parallel.backend = "pmap"  # fine-tuning: pmap | shard_map (jax.jit over a `data` mesh)

  # The report's embedding.png: a t-SNE map of the test features (linear, knn, transfer).
  c.report_embedding = True
  c.features = ml_collections.ConfigDict()
  c.features.batch_size = 256

  # SkeletonCLR/AimCLR linear evaluation (docs/method.md, "Evaluation protocols"). The
  # reported number is the last epoch of a probe trained on the whole training split; a
  # second probe, trained without a stratified minival part (`minival_size` of train,
  # 0 = skip), picks an epoch on minival.
  c.linear = ml_collections.ConfigDict()
  c.linear.epochs = 100
  c.linear.batch_size = 128
  c.linear.learning_rate = 3.0
  c.linear.momentum = 0.9
  c.linear.weight_decay = 0.0
  c.linear.decay_epochs = (80,)
  c.linear.decay_factor = 0.1
  c.linear.l2_normalize = False
  # Not the recipe: standardise each feature dimension with the training split's mean and
  # standard deviation, so the probe does not favour the encoder with larger features.
  c.linear.standardize = False
  c.linear.minival_size = 0.05

  c.knn = ml_collections.ConfigDict()
  c.knn.k = 200
  c.knn.temperature = 0.1

  # Fine-tuning all layers (semi, finetune): encoder + new linear head, the normal-view
  # augmentation (temporal crop + shear, docs/method.md, "Augmentations"). With
  # encoder_mode "train" the demo's 8-channel encoder does not survive dropout 0.5;
  # fine-tune it so with --config.model.dropout=0.0.
  c.finetune = ml_collections.ConfigDict()
  c.finetune.label_fraction = 1.0  # semi: 0.01 / 0.1, drawn per class (class-balanced)
  # How the encoder runs while it trains: eval (the reference's: BatchNorm normalises with
  # its running statistics and keeps them, no dropout; gradients still reach every layer)
  # or train (batch statistics, running statistics updated, dropout model.dropout).
  c.finetune.encoder_mode = "eval"
  c.finetune.epochs = 80
  c.finetune.batch_size = 128  # lowered to the subset size when the subset is smaller
  c.finetune.learning_rate = 0.1
  c.finetune.momentum = 0.9
  c.finetune.nesterov = False
  c.finetune.weight_decay = 1e-4  # [choice]: the PyTorch fine-tuning configs' value
  c.finetune.decay_epochs = (50, 70)  # [choice]
  c.finetune.decay_factor = 0.1
  # The normal view, with the fields and meanings of the pretraining config's data.augment.
  c.finetune.augment = ml_collections.ConfigDict()
  c.finetune.augment.enabled = True  # False: the labelled samples as they are
  c.finetune.augment.padding_ratio = 6  # 0 = no temporal crop
  c.finetune.augment.shear_amplitude = 0.5  # <= 0 = no shear
  return c


def get_config(arg: str = "linear") -> ml_collections.ConfigDict:
  c = base_config()
  if arg not in VARIANTS:
    raise ValueError(f"Unknown evaluation config {arg!r}: use one of "
                     f"{', '.join(VARIANTS)}.")
  c.protocol = VARIANTS[arg]
  if c.protocol == "semi":
    c.finetune.label_fraction = {"semi1": 0.01, "semi10": 0.1}[arg]
  return c
