"""FreST as PyTorch code: TSLANet's adaptive spectral block on skeleton axes.

The reference the FreST gradient tests compare with, written from TSLANet's
`Adaptive_Spectral_Block` (`adaptive_filter=True`) and freqjax's choices, independent of
freqjax's implementation:
- an rFFT ("ortho") along the sequence; the bins' energy summed over channels, divided by
  its lower median over the bins (`torch.median`) + 1e-6; a mask `energy > θ` with a
  straight-through threshold; `F·W_global + (F·mask)·W_local`; the inverse rFFT;
- freqjax's choices: FreS filters each frame as a sequence over joints, FreT each joint as a
  sequence over frames, each after its own LayerNorm over channels (ε 1e-5), and the
  output is `X + FreS + FreT`; a weight per channel `(C,)` as TSLANet's, or per frequency
  and channel `(L//2 + 1, C)`.
The module works on the PyTorch ST-GCN's `(N·M, C, T, V)` maps, so it slots in after a block
of `helpers.torch_stgcn.torch_stgcn` (`after_block`).
"""
from typing import Any

import numpy as np

from helpers import import_torch


def torch_frest(params: dict[str, Any]):
  """A PyTorch FreST holding freqjax's FreST `params` (`fres`/`fret`: `w_global`,
  `w_local` `(..., 2)` pairs and `threshold`; `spatial_norm`/`temporal_norm`: `scale`,
  `bias`). Branches and norms absent from `params` are off; the dtype is `params`'."""
  torch = import_torch()
  from torch import nn  # pylint: disable=import-outside-toplevel

  tensor = lambda a: nn.Parameter(torch.tensor(np.asarray(a)))

  class AdaptiveSpectralBlock(nn.Module):
    """TSLANet's block on `(B, L, C)`: filters along L."""

    def __init__(self, p):
      super().__init__()
      self.complex_weight = tensor(p["w_global"])
      self.complex_weight_high = tensor(p["w_local"])
      self.threshold_param = tensor(np.reshape(p["threshold"], (1,)))

    def mask(self, x_fft):
      energy = torch.abs(x_fft).pow(2).sum(dim=-1)  # (B, L_f)
      median = energy.median(dim=1, keepdim=True)[0]  # the lower median
      normalized = energy / (median + 1e-6)
      hard = (normalized > self.threshold_param).to(normalized.dtype)
      return ((hard - self.threshold_param).detach() + self.threshold_param).unsqueeze(-1)

    def forward(self, x):
      length = x.shape[1]
      x_fft = torch.fft.rfft(x, dim=1, norm="ortho")
      w_global = torch.view_as_complex(self.complex_weight)
      w_local = torch.view_as_complex(self.complex_weight_high)
      weighted = x_fft * w_global + x_fft * self.mask(x_fft) * w_local
      return torch.fft.irfft(weighted, n=length, dim=1, norm="ortho")

  def norm(p):
    if p is None:
      return nn.Identity()
    layer = nn.LayerNorm(np.shape(p["scale"])[0], eps=1e-5)
    layer.weight, layer.bias = tensor(p["scale"]), tensor(p["bias"])
    return layer

  class FreST(nn.Module):
    def __init__(self):
      super().__init__()
      self.fres = AdaptiveSpectralBlock(params["fres"]) if "fres" in params else None
      self.fret = AdaptiveSpectralBlock(params["fret"]) if "fret" in params else None
      self.spatial_norm = norm(params.get("spatial_norm"))
      self.temporal_norm = norm(params.get("temporal_norm"))

    def forward(self, x):
      """`(B, C, T, V)` → the same shape."""
      x = x.permute(0, 2, 3, 1)  # (B, T, V, C)
      b, t, v, c = x.shape
      out = x
      if self.fres is not None:  # each frame: a sequence over joints
        joints = self.spatial_norm(x).reshape(b * t, v, c)
        out = out + self.fres(joints).reshape(b, t, v, c)
      if self.fret is not None:  # each joint: a sequence over frames
        frames = self.temporal_norm(x).permute(0, 2, 1, 3).reshape(b * v, t, c)
        out = out + self.fret(frames).reshape(b, v, t, c).permute(0, 2, 1, 3)
      return out.permute(0, 3, 1, 2)

  return FreST()


def frest_grads(module) -> dict[str, dict[str, np.ndarray]]:
  """The gradients of a `torch_frest` module, named as freqjax's FreST params."""
  names = {"complex_weight": "w_global", "complex_weight_high": "w_local",
           "threshold_param": "threshold", "weight": "scale", "bias": "bias"}
  grads: dict[str, dict[str, np.ndarray]] = {}
  for name, p in module.named_parameters():
    branch, leaf = name.split(".")
    value = p.grad.numpy()
    grads.setdefault(branch, {})[names[leaf]] = value.reshape(()) if leaf == "threshold_param" else value
  return grads
