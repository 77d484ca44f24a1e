"""The encoder's arithmetic in two implementations, chosen once per model (`model.kernels`).

- `cpu` (`kernels.cpu`): rewrites that make XLA:CPU fast: hand-written backward passes
  whose row sums are matrix products at `Precision.HIGHEST`, the dense graph-conv fold,
  per-phase strided convolutions, wide temporal convolutions through the Fourier
  transform over frames (`kernels.spectral_conv`), 8/16-bit dropout draws.
- `xla` (`kernels.xla`): the plain operations and autodiff, which XLA's GPU and TPU
  compilers are built for.
- `auto`: `cpu` when the computation is compiled for a CPU, else `xla`.

Both modules define the same functions with the same arguments and results (up to float
rounding; dropout masks are drawn differently, at the same rate): `add_bias`,
`mean_over_middle`, `batch_norm_train`, `layer_norm`, `modulate`, `graph_conv`,
`temporal_conv`, `dropout`. The models hold the choice as a `kernels` attribute and call
`kernel_set(self.kernels).<function>`; parameters are the same under both.

`auto` is resolved by `resolve_kernels(kernels, platform)` for the platform the program is
compiled for. The builders (`freqjax.pretraining.state.build_networks`, the evaluation)
resolve it for `jax.default_backend()` unless told another platform; a program exported
from this host for GPUs and TPUs (`jax.export`) must pass that platform, since a module
left at `auto` resolves it when traced, for the host's backend.
"""
import types

import jax

from freqjax.models.kernels import cpu, xla

KERNELS = ("auto", "cpu", "xla")
_SETS = {"cpu": cpu, "xla": xla}


def resolve_kernels(kernels: str, platform: str | None = None,
                    field: str = "model.kernels") -> str:
  """`"cpu"` or `"xla"`: the kernel set `kernels` means on `platform`.

  Args:
    kernels: `auto`, `cpu` or `xla`.
    platform: what the program is compiled for: `cpu`, `cuda`, `rocm`, `gpu`, `tpu` (as
      `jax.export` or `jax.default_backend()` name it); None = `jax.default_backend()`.
    field: named in the error message.

  Raises:
    ValueError: `kernels` is not one of `KERNELS`.
  """
  if kernels not in KERNELS:
    raise ValueError(f"{field} is {kernels!r}; use one of {', '.join(KERNELS)} (auto: the "
                     "CPU kernels on CPUs, plain XLA ops on GPUs and TPUs).")
  if kernels != "auto":
    return kernels
  return "cpu" if (platform or jax.default_backend()) == "cpu" else "xla"


def kernel_set(kernels: str) -> types.ModuleType:
  """The module of functions `kernels` selects (`auto`: for `jax.default_backend()`)."""
  return _SETS[resolve_kernels(kernels)]
