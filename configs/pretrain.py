"""MICA pretraining configs: `--config configs/pretrain.py:<variant>`.

Variants: `demo` (synthetic data, CPU, minutes), `test` (tiny, for tests), and
`<dataset>_<benchmark>_<stream>` for the published benchmarks:
`ntu60_{xsub,xview}`, `ntu120_{xsub,xset}`, `pku1_{xsub,xview}`, `pku2_{xsub,xview}`,
each `_{joint,bone,motion}`, e.g. `ntu60_xsub_joint`. Data live under `data/` as
`python -m freqjax.data.prepare` writes them, text embeddings under `data/text/`.

Every choice the paper leaves open (docs/method.md, "Open choices") is a field here, so
an ablation is a `--config.x=y` away.
"""
import ml_collections

DATASETS = {
    # name: (prepared directory, benchmarks, number of classes, text file)
    "ntu60": ("data/ntu60", ("xsub", "xview"), 60, "data/text/ntu60_descriptions.npz"),
    "ntu120": ("data/ntu120", ("xsub", "xset"), 120, "data/text/ntu120_descriptions.npz"),
    "pku1": ("data/pku1", ("xsub", "xview"), 51, "data/text/pku_descriptions.npz"),
    "pku2": ("data/pku2", ("xsub", "xview"), 51, "data/text/pku_descriptions.npz"),
}
STREAMS = ("joint", "bone", "motion")


def base_config() -> ml_collections.ConfigDict:
  """SkeletonCLR/AimCLR recipe with MICA's losses (docs/method.md, "Pretraining recipe",
  "Total loss")."""
  c = ml_collections.ConfigDict()
  c.seed = 0
  c.init_from = ""  # a workdir or a PyTorch checkpoint (.pt/.npz) to start the encoder from

  c.data = ml_collections.ConfigDict()
  c.data.format = "aimclr"  # aimclr | pyskl | ctrgcn
  c.data.path = ""
  c.data.split = "train"
  c.data.test_split = "val"  # used by evaluation
  c.data.num_frames = 50
  c.data.num_classes = 60
  c.data.stream = "joint"  # joint | bone | motion
  c.data.prefetch = 2
  # Host threads making batches (in step order; the same batches as one thread). Four feed
  # ~16k samples/s on a loaded 2-core CPU (benchmarks/input_pipeline.py); more on a host
  # with more cores and devices.
  c.data.loader_threads = 4

  # The views' augmentation (freqjax/data/augment.py), on device, the reference's values
  # (AimCLR's feeder/tools.py) unless marked. The normal view (query and key) is a
  # temporal crop, then a shear; the extreme view continues with the steps below it.
  c.data.augment = ml_collections.ConfigDict()
  c.data.augment.enabled = True  # False: query and key views are the input as it is
  c.data.augment.padding_ratio = 6  # crop: reflect-pad T // ratio frames a side; 0 = no crop
  c.data.augment.shear_amplitude = 0.5  # off-diagonals U(-a, a); a <= 0 = no shear (ref.: -1)
  # True: the query view is the extreme view, contrasted by the one InfoNCE against the
  # normal-view key and the queue; no third view, no other loss. (AimCLR keeps the normal
  # query/key pair and adds the extreme view as a third view with its own loss, D³M:
  # freqjax does not implement that.)
  c.data.augment.extreme_query = False
  c.data.augment.flip_prob = 0.5  # left/right joint swap
  c.data.augment.rotate_main_degrees = 30.0  # one random axis rotated by U(0°, this)
  c.data.augment.rotate_other_degrees = 1.0  # the other two by U(0°, this)
  c.data.augment.time_flip_prob = 0.0  # [departure] AimCLR's extreme view uses 0.5
  c.data.augment.noise_prob = 0.5
  c.data.augment.noise_std = 0.01
  c.data.augment.blur_prob = 0.5  # Gaussian blur along time, zero-padded
  c.data.augment.blur_kernel_size = 15
  c.data.augment.blur_sigma_min = 0.1
  c.data.augment.blur_sigma_max = 2.0
  c.data.augment.blur_normalize = False  # the reference's kernel is not normalised
  c.data.augment.mask_prob = 0.5  # zero one random coordinate axis
  # [departure] noise and blur touch only the frames and persons present in the input, so
  # zero padding stays zero; False = AimCLR (noise everywhere, blur spreads into padding).
  c.data.augment.present_only = True

  c.text = ml_collections.ConfigDict()
  c.text.path = ""  # .npz from `python -m freqjax.text.embed`
  c.text.sentences = "random"  # random | mean, with several sentences per key

  c.model = ml_collections.ConfigDict()
  c.model.hidden_channels = 16
  c.model.hidden_dim = 256
  c.model.layout = "ntu-rgb+d"
  c.model.dropout = 0.5
  c.model.frest_blocks = (9,)  # 0-based block indices; () = plain ST-GCN
  c.model.frest_spatial = True
  c.model.frest_temporal = True
  c.model.frest_per_frequency = False  # [choice] one complex weight per channel
  c.model.frest_layer_norm = True  # [choice] LayerNorm as the decoupling step
  c.model.mlp_dim = 128
  # reference: SkeletonCLR/AimCLR's weights_init (conv/dense kernels N(0, 0.02²), biases 0,
  # BatchNorm scales N(1, 0.02²)) on the encoder, heads and harmonizer; flax: freqjax's
  # earlier initialisation (lecun-normal, PyTorch's nn.Linear default in the heads), to
  # repeat earlier runs. FreST keeps TSLANet's initialisation in both.
  c.model.init = "reference"
  # The encoder's arithmetic (freqjax/models/kernels): auto = the CPU rewrites when compiled
  # for a CPU, plain XLA ops (autodiff, strided convolutions) for GPUs and TPUs; cpu | xla.
  c.model.kernels = "auto"
  # float32 | bfloat16: convolutions, matrix products and attention; parameters, optimizer
  # state, BatchNorm statistics, FreST, the losses and the queues stay float32.
  c.model.compute_dtype = "float32"
  c.model.remat = False  # recompute each ST-GCN block in the backward pass: less memory

  c.moco = ml_collections.ConfigDict()
  c.moco.queue_size = 32768
  c.moco.temperature = 0.2
  c.moco.momentum = 0.999

  c.fm = ml_collections.ConfigDict()
  c.fm.weight = 1.0  # [choice] λ_fm; 0 removes Feature Modulation from the compiled step
  c.fm.dim = 512  # CLIP ViT-B/32 text embedding width
  c.fm.text_queue_size = 8192  # [choice]
  c.fm.tau_s = 0.1  # [choice] student temperature
  c.fm.tau_t = 0.05  # [choice] teacher temperature
  c.fm.noise_std = 0.01  # [choice] σ of the Gaussian noise

  c.harmonizer = ml_collections.ConfigDict()
  c.harmonizer.weight = 0.5  # [choice] λ_h; 0 removes the Modality Harmonizer
  c.harmonizer.dim = 256  # [choice] attention width
  c.harmonizer.num_heads = 8  # [choice]
  c.harmonizer.dropout = 0.0

  c.optim = ml_collections.ConfigDict()
  c.optim.batch_size = 128  # global, over all devices and hosts
  c.optim.base_lr = 0.1  # at batch 128, scaled linearly with the batch size
  c.optim.momentum = 0.9
  c.optim.nesterov = False
  c.optim.weight_decay = 1e-4
  c.optim.epochs = 300.0  # a float, so a run can be a fraction of an epoch
  c.optim.schedule = "step"  # step | cosine
  c.optim.decay_epochs = (250,)
  c.optim.decay_factor = 0.1
  c.optim.warmup_epochs = 0.0

  c.parallel = ml_collections.ConfigDict()
  c.parallel.backend = "pmap"  # pmap | shard_map (jax.jit over a 1-D `data` mesh)

  # kNN on fixed slices of the train (bank) and test (queries) splits, labels only watched.
  c.monitor = ml_collections.ConfigDict()
  c.monitor.knn_every_epochs = 10.0  # 0 turns the monitor off
  c.monitor.knn_train_samples = 2048
  c.monitor.knn_test_samples = 1024
  c.monitor.knn_k = 20
  c.monitor.knn_temperature = 0.1
  c.monitor.knn_batch_size = 256

  c.log_every_steps = 50
  c.checkpoint_every_steps = 1000
  c.keep_checkpoints = 3
  return c


def benchmark_config(name: str) -> ml_collections.ConfigDict:
  try:
    dataset, benchmark, stream = name.split("_")
    directory, benchmarks, num_classes, text = DATASETS[dataset]
    if benchmark not in benchmarks or stream not in STREAMS:
      raise KeyError
  except (ValueError, KeyError):
    raise ValueError(f"Unknown pretraining config {name!r}: use demo, test or "
                     "<dataset>_<benchmark>_<stream> with dataset in "
                     f"{sorted(DATASETS)}, e.g. ntu60_xsub_joint.") from None
  c = base_config()
  c.data.path = f"{directory}/{benchmark}"
  c.data.num_classes = num_classes
  c.data.stream = stream
  c.text.path = text
  if dataset.startswith("pku"):
    c.data.test_split = "val"
  return c


def demo_config() -> ml_collections.ConfigDict:
  """Synthetic skeletons and a random-init text model: a CPU run of a few minutes.

  `python -m freqjax.demo` (`make demo`) runs it on the 1053 training samples of the
  synthetic data seen from tilted cameras (`freqjax.demo.GENERATION`). The model is ST-GCN
  at half width (8 channels, 64-d features) on 20 frames; the losses and FreST are those of
  MICA. Departures from the recipe, for a 320-step run (20 epochs, a few minutes on a
  2-core CPU): Flax's initialisation (see below), no dropout (at 8 channels dropout 0.5
  slowed learning), lr 0.2 at batch 64
  (base 0.4 at 128) on a short cosine schedule, and a queue of 256 keys, a quarter of the
  training set (a queue as large as the data set holds each sample's own earlier key among
  its negatives).
  """
  c = base_config()
  c.data.path = "data/synthetic/xperformer_tilted"
  c.data.num_classes = 14
  c.data.num_frames = 20
  c.text.path = "data/synthetic/text.npz"
  c.model.hidden_channels = 8
  c.model.hidden_dim = 64
  c.model.dropout = 0.0
  # Flax's init, not the reference's N(0, 0.02): in this 320-step run of the half-width
  # model the reference init did not learn (seed 0: the instance loss rose to chance and
  # kNN fell below a random encoder's; README, "The demo").
  c.model.init = "flax"
  c.harmonizer.dim = 64
  c.harmonizer.num_heads = 4
  c.moco.queue_size = 256
  c.moco.momentum = 0.99
  c.fm.text_queue_size = 512
  c.optim.batch_size = 64
  c.optim.base_lr = 0.4
  c.optim.epochs = 20
  c.optim.schedule = "cosine"
  c.optim.warmup_epochs = 1.0
  c.log_every_steps = 16
  c.checkpoint_every_steps = 64
  return c


def test_config() -> ml_collections.ConfigDict:
  """A few-second run for tests: tiny widths, short sequences, tiny queues."""
  c = demo_config()
  c.data.num_frames = 16
  c.model.hidden_channels = 4
  c.model.hidden_dim = 16
  c.model.mlp_dim = 8
  c.model.dropout = 0.5  # the recipe's, so the tests run the dropout path
  c.model.init = "reference"  # the recipe's, so the tests run it
  c.harmonizer.dim = 16
  c.harmonizer.num_heads = 2
  c.moco.queue_size = 32
  c.fm.text_queue_size = 16
  c.optim.batch_size = 8
  c.optim.base_lr = 0.1
  c.optim.epochs = 1
  c.log_every_steps = 1
  c.checkpoint_every_steps = 2
  return c


def get_config(arg: str = "demo") -> ml_collections.ConfigDict:
  if arg == "demo":
    return demo_config()
  if arg == "test":
    return test_config()
  return benchmark_config(arg)
