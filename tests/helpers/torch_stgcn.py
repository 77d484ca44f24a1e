"""SkeletonCLR's ST-GCN as PyTorch code and random PyTorch-layout state dicts.

The reference the encoder tests compare with: written here from the reference code's
semantics, independent of freqjax's implementation.
"""
import math
import os

import numpy as np

from freqjax import graph
from helpers import import_torch


SHAPES_FILE = os.path.join(os.path.dirname(__file__), "aimclr_stgcn_state_dict.txt")
STRIDES = (1, 1, 1, 1, 2, 1, 1, 2, 1, 1)  # temporal stride of each block


def reference_shapes() -> dict[str, tuple[int, ...]]:
  shapes = {}
  for line in open(SHAPES_FILE):
    name, shape = line.rstrip("\n").split("\t")
    shapes[name] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
  return shapes


def stgcn_shapes(hidden_channels: int = 16, hidden_dim: int = 256,
                 num_classes: int = 60) -> dict[str, tuple[int, ...]]:
  """The state dict's names and shapes for other widths, in the reference's order
  (`stgcn_shapes()` is `reference_shapes()`)."""
  c = hidden_channels
  widths = [c] * 4 + [2 * c] * 3 + [4 * c] * 2 + [hidden_dim]
  bn = lambda name, n: {f"{name}.{leaf}": (n,) for leaf in (
      "weight", "bias", "running_mean", "running_var")} | {f"{name}.num_batches_tracked": ()}
  shapes = {"A": (3, 25, 25), **bn("data_bn", 75)}
  for i, (c_in, c_out) in enumerate(zip([3] + widths[:-1], widths)):
    p = f"st_gcn_networks.{i}"
    shapes |= {f"{p}.gcn.conv.weight": (3 * c_out, c_in, 1, 1), f"{p}.gcn.conv.bias": (3 * c_out,),
               **bn(f"{p}.tcn.0", c_out), f"{p}.tcn.2.weight": (c_out, c_out, 9, 1),
               f"{p}.tcn.2.bias": (c_out,), **bn(f"{p}.tcn.3", c_out)}
    if i > 0 and (c_in != c_out or STRIDES[i] != 1):
      shapes |= {f"{p}.residual.0.weight": (c_out, c_in, 1, 1), f"{p}.residual.0.bias": (c_out,),
                 **bn(f"{p}.residual.1", c_out)}
  shapes |= {"fc.weight": (num_classes, hidden_dim), "fc.bias": (num_classes,)}
  return shapes | {f"edge_importance.{i}": (3, 25, 25) for i in range(len(widths))}


def random_state_dict(seed=0, shapes=None) -> dict[str, np.ndarray]:
  """A PyTorch-layout state dict with well-scaled random values for every tensor of
  `shapes` (default: the reference's, `reference_shapes()`)."""
  rng = np.random.default_rng(seed)
  state = {}
  for name, shape in (shapes or reference_shapes()).items():
    if name == "A":
      value = graph.adjacency("ntu-rgb+d")
    elif name.endswith("num_batches_tracked"):
      value = np.array(7)
    elif name.endswith("running_var"):
      value = rng.uniform(0.5, 2.0, shape)
    elif name.endswith("running_mean"):
      value = rng.normal(0, 0.3, shape)
    elif name.startswith("edge_importance"):
      value = rng.uniform(0.5, 1.5, shape)
    elif len(shape) == 1 and ("tcn.0" in name or "tcn.3" in name or "residual.1" in name
                              or "data_bn" in name) and name.endswith("weight"):
      value = rng.uniform(0.5, 1.5, shape)
    elif name.endswith("weight"):
      value = rng.normal(0, 1 / math.sqrt(math.prod(shape[1:])), shape)
    else:
      value = rng.normal(0, 0.1, shape)
    state[name] = np.asarray(value, np.float32)
  return state


def torch_stgcn(sd, after_block=None, dropout: float = 0.0):
  """SkeletonCLR's PyTorch ST-GCN (up to the pooled feature) holding the state dict `sd`.

  The widths are read from `sd` (the reference's 16…256, or smaller ones). `after_block`
  maps a 0-based block index to a module applied to that block's `(N·M, C, T, V)` output
  (e.g. a FreST block); those modules keep the weights they hold. `dropout` is the rate
  after the second BatchNorm of blocks 1–9 (block 0 has none, as in the reference; the
  reference's pretraining uses 0.5, the comparisons 0 to be deterministic).
  """
  torch = import_torch()
  from torch import nn

  class Block(nn.Module):
    def __init__(self, c_in, c_out, stride, residual, rate):
      super().__init__()
      self.gcn = nn.Module()
      self.gcn.conv = nn.Conv2d(c_in, 3 * c_out, 1)
      self.tcn = nn.Sequential(nn.BatchNorm2d(c_out), nn.ReLU(),
                               nn.Conv2d(c_out, c_out, (9, 1), (stride, 1), (4, 0)),
                               nn.BatchNorm2d(c_out), nn.Dropout(rate))
      self.res_kind = "none" if not residual else (
          "identity" if c_in == c_out and stride == 1 else "conv")
      if self.res_kind == "conv":
        self.residual = nn.Sequential(nn.Conv2d(c_in, c_out, 1, (stride, 1)),
                                      nn.BatchNorm2d(c_out))

    def forward(self, x, a):
      res = {"none": 0, "identity": x}.get(self.res_kind) if self.res_kind != "conv" else (
          self.residual(x))
      y = self.gcn.conv(x)
      n, kc, t, v = y.shape
      y = torch.einsum("nkctv,kvw->nctw", y.view(n, 3, kc // 3, t, v), a)
      return torch.relu(self.tcn(y) + res)

  class Model(nn.Module):
    def __init__(self):
      super().__init__()
      self.register_buffer("A", torch.tensor(graph.adjacency("ntu-rgb+d")))
      self.data_bn = nn.BatchNorm1d(75)
      plan = [(sd[f"st_gcn_networks.{i}.gcn.conv.weight"].shape[1],
               sd[f"st_gcn_networks.{i}.tcn.2.weight"].shape[0], stride)
              for i, stride in enumerate(STRIDES)]
      self.st_gcn_networks = nn.ModuleList(
          Block(i, o, s, residual=k > 0, rate=dropout if k > 0 else 0.0)
          for k, (i, o, s) in enumerate(plan))
      self.edge_importance = nn.ParameterList(
          nn.Parameter(torch.ones(3, 25, 25)) for _ in plan)
      self.fc = nn.Linear(*sd["fc.weight"].shape[::-1])
      self.after_block = nn.ModuleDict({str(i): m for i, m in (after_block or {}).items()})

    def forward(self, x):
      n, c, t, v, m = x.shape
      x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
      x = self.data_bn(x).view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
      for i, (block, importance) in enumerate(zip(self.st_gcn_networks, self.edge_importance)):
        x = block(x, self.A * importance)
        if str(i) in self.after_block:
          x = self.after_block[str(i)](x)
      return x.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)

  model = Model()
  own = {f"after_block.{k}": v for k, v in model.after_block.state_dict().items()}
  model.load_state_dict({**{k: torch.tensor(v) for k, v in sd.items()}, **own})
  return model
