"""SkeletonCLR's pretraining step in PyTorch: the reference of the pretraining-step test.

Written from the semantics of the reference code (AimCLR's `net/skeletonclr.py` and its
pretraining processor), independent of freqjax: a query encoder (ST-GCN, then the MLP head
`Linear(256, 256) → ReLU → Linear(256, D)`), a key encoder of the same shape that only
follows the query's by momentum, a `(D, K)` queue of keys (the reference's layout), and one
training iteration that

1. encodes the query view and L2-normalises it,
2. without gradient: moves every key parameter to `m·θ_k + (1 − m)·θ_q` FIRST, then
   encodes the key view with the moved key encoder (train mode: its own BatchNorm batch
   statistics and running statistics) and L2-normalises it,
3. takes the logits `[q·k, q·queue] / T` against the queue as it was before this step,
   and writes the keys into the queue's columns `ptr .. ptr + B − 1`,
4. minimises the cross-entropy with label 0 by `torch.optim.SGD(lr, momentum,
   weight_decay)` (the key encoder has no gradient, so SGD leaves it alone),
5. advances the pointer by B modulo K.

The reference writes at `ptr + B·gpu_index` (one slice per GPU); on one CPU device that is
`ptr`.
"""
from typing import Any

import numpy as np

from helpers import import_torch
from helpers.torch_stgcn import torch_stgcn

HEAD_KEYS = ("fc.0.weight", "fc.0.bias", "fc.2.weight", "fc.2.bias")


def random_head_state(hidden: int, features: int, seed: int) -> dict[str, np.ndarray]:
  """The MLP head's `fc.{0,2}.{weight,bias}` in PyTorch layout, float32."""
  rng = np.random.default_rng(seed)
  shapes = {"fc.0.weight": (hidden, hidden), "fc.0.bias": (hidden,),
            "fc.2.weight": (features, hidden), "fc.2.bias": (features,)}
  return {name: (rng.normal(size=shape) / np.sqrt(hidden if "weight" in name else 10)
                 ).astype(np.float32) for name, shape in shapes.items()}


def skeletonclr(query_state: dict[str, np.ndarray], key_state: dict[str, np.ndarray],
                queue: np.ndarray, *, temperature: float, momentum: float,
                dropout: float = 0.0) -> Any:
  """SkeletonCLR (PyTorch module) from state dicts.

  Args:
    query_state, key_state: an ST-GCN state dict (`torch_stgcn`'s names) plus the MLP head
      (`HEAD_KEYS`), for the query and the key encoder.
    queue: `(D, K)` L2-normalised columns, as the reference stores it.
    temperature: T of the logits.
    momentum: m of the key encoder's update.
    dropout: the ST-GCN's dropout rate (`torch_stgcn`; the reference pretrains with 0.5).

  Returns:
    The model in float32 (call `.double()` for float64) and train mode.
  """
  torch = import_torch()
  from torch import nn  # pylint: disable=import-outside-toplevel
  functional = nn.functional

  class Encoder(nn.Module):
    """`encoder_q` / `encoder_k`: the pooled ST-GCN feature through the MLP head."""

    def __init__(self, state):
      super().__init__()
      self.stgcn = torch_stgcn({k: v for k, v in state.items() if k not in HEAD_KEYS},
                               dropout=dropout)
      hidden, features = state["fc.0.weight"].shape[0], state["fc.2.weight"].shape[0]
      self.fc = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, features))
      self.fc.load_state_dict({k.removeprefix("fc."): torch.tensor(state[k]) for k in HEAD_KEYS})

    def forward(self, x):
      return self.fc(self.stgcn(x))

  class SkeletonCLR(nn.Module):

    def __init__(self):
      super().__init__()
      self.encoder_q = Encoder(query_state)
      self.encoder_k = Encoder(key_state)
      for param in self.encoder_k.parameters():
        param.requires_grad = False  # trained only by the momentum update
      self.m, self.T, self.K = momentum, temperature, queue.shape[1]
      self.register_buffer("queue", torch.tensor(queue))
      self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    @torch.no_grad()
    def momentum_update_key_encoder(self):
      for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters()):
        param_k.data = param_k.data * self.m + param_q.data * (1.0 - self.m)

    @torch.no_grad()
    def enqueue(self, keys):
      ptr = int(self.queue_ptr)
      self.queue[:, ptr:ptr + keys.shape[0]] = keys.T

    @torch.no_grad()
    def update_ptr(self, batch_size):
      assert self.K % batch_size == 0
      self.queue_ptr[0] = (self.queue_ptr[0] + batch_size) % self.K

    def forward(self, im_q, im_k):
      q = functional.normalize(self.encoder_q(im_q), dim=1)
      with torch.no_grad():
        self.momentum_update_key_encoder()
        k = functional.normalize(self.encoder_k(im_k), dim=1)
      positive = torch.einsum("nc,nc->n", q, k).unsqueeze(-1)
      negative = torch.einsum("nc,ck->nk", q, self.queue.clone().detach())
      logits = torch.cat([positive, negative], dim=1) / self.T
      labels = torch.zeros(logits.shape[0], dtype=torch.long)
      self.enqueue(k)
      return logits, labels

  return SkeletonCLR().train()


def train_step(model, optimizer, im_q, im_k) -> float:
  """One iteration of the reference's pretraining loop; returns the loss."""
  torch = import_torch()
  logits, labels = model(im_q, im_k)
  loss = torch.nn.functional.cross_entropy(logits, labels)
  optimizer.zero_grad()
  loss.backward()
  optimizer.step()
  model.update_ptr(im_q.shape[0])
  return loss.item()
