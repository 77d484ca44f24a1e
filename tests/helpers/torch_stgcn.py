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


def reference_shapes() -> dict[str, tuple[int, ...]]:
  shapes = {}
  for line in open(SHAPES_FILE):
    name, shape = line.rstrip("\n").split("\t")
    shapes[name] = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
  return shapes


def random_state_dict(seed=0) -> dict[str, np.ndarray]:
  """A PyTorch-layout state dict with well-scaled random values for every tensor."""
  rng = np.random.default_rng(seed)
  state = {}
  for name, shape in reference_shapes().items():
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


def torch_stgcn(sd):
  """SkeletonCLR's PyTorch ST-GCN (up to the pooled feature) holding the state dict `sd`."""
  torch = import_torch()
  from torch import nn

  class Block(nn.Module):
    def __init__(self, c_in, c_out, stride, residual):
      super().__init__()
      self.gcn = nn.Module()
      self.gcn.conv = nn.Conv2d(c_in, 3 * c_out, 1)
      self.tcn = nn.Sequential(nn.BatchNorm2d(c_out), nn.ReLU(),
                               nn.Conv2d(c_out, c_out, (9, 1), (stride, 1), (4, 0)),
                               nn.BatchNorm2d(c_out), nn.Dropout(0.0))
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
      plan = [(3, 16, 1), (16, 16, 1), (16, 16, 1), (16, 16, 1), (16, 32, 2), (32, 32, 1),
              (32, 32, 1), (32, 64, 2), (64, 64, 1), (64, 256, 1)]
      self.st_gcn_networks = nn.ModuleList(
          Block(i, o, s, residual=k > 0) for k, (i, o, s) in enumerate(plan))
      self.edge_importance = nn.ParameterList(
          nn.Parameter(torch.ones(3, 25, 25)) for _ in plan)
      self.fc = nn.Linear(256, 60)

    def forward(self, x):
      n, c, t, v, m = x.shape
      x = x.permute(0, 4, 3, 1, 2).reshape(n * m, v * c, t)
      x = self.data_bn(x).view(n, m, v, c, t).permute(0, 1, 3, 4, 2).reshape(n * m, c, t, v)
      for block, importance in zip(self.st_gcn_networks, self.edge_importance):
        x = block(x, self.A * importance)
      return x.mean(dim=(2, 3)).view(n, m, -1).mean(dim=1)

  model = Model()
  model.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
  return model
