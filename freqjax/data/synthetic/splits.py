"""Sample names and the two benchmarks that split on them.

A sample's name follows NTU RGB+D, `SsssCcccPpppRrrrAaaa`: setup, camera (the view),
performer, replication and action (label + 1). `xperformer` trains on the odd performer
ids and validates on the even ones (NTU's cross-subject); `xview` trains on views 2..V and
validates on view 1 (NTU's cross-view).
"""
from typing import Sequence

import numpy as np

BENCHMARKS = ("xperformer", "xview")


def xperformer_train_ids(num_performers: int) -> list[int]:
  """Performers whose samples train under the cross-performer benchmark: the odd ids."""
  return [p for p in range(1, num_performers + 1) if p % 2 == 1]


def xview_train_ids(num_views: int) -> list[int]:
  """Views that train under the cross-view benchmark: all but view 1 (NTU: cameras 2, 3)."""
  return list(range(2, num_views + 1))


def sample_names(setup: np.ndarray, view: np.ndarray, performer: np.ndarray,
                 replication: np.ndarray, labels: np.ndarray) -> list[str]:
  """`SsssCcccPpppRrrrAaaa` per sample from `(N,)` integer ids (action = label + 1)."""
  return [f"S{s:03d}C{v:03d}P{p:03d}R{r:03d}A{a + 1:03d}"
          for s, v, p, r, a in zip(setup, view, performer, replication, labels)]


def _field(name: str, key: str) -> int:
  at = name.find(key)
  return int(name[at + 1:at + 4])


def train_mask(names: Sequence[str], benchmark: str, num_performers: int,
               num_views: int) -> tuple[np.ndarray, list[int]]:
  """`(N,)` bool, True for the samples that train under `benchmark`, and the performer
  (`xperformer`) or view (`xview`) ids that train."""
  if benchmark == "xperformer":
    key, train_ids = "P", xperformer_train_ids(num_performers)
  elif benchmark == "xview":
    key, train_ids = "C", xview_train_ids(num_views)
  else:
    raise ValueError(f"synthetic data: unknown benchmark {benchmark!r}; use one of "
                     f"{', '.join(BENCHMARKS)}.")
  return np.array([_field(s, key) in train_ids for s in names]), train_ids
