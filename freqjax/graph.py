"""Skeleton layouts and the ST-GCN adjacency tensors built from them.

A layout is one table: joint count, 1-based bone pairs `(joint, parent)` and the centre
joint. `adjacency` reproduces ST-GCN's `Graph` (`net/utils/graph.py` of st-gcn,
SkeletonCLR, AimCLR) exactly, so a 20-joint or a 17-joint (COCO) layout is one entry of
`LAYOUTS` away.
"""
import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Layout:
  """A skeleton layout.

  Attributes:
    name: the name ST-GCN configs use (`graph_args.layout`).
    num_joints: V.
    bones: 1-based `(joint, parent)` pairs; the bone stream is `x[joint] - x[parent]`.
      The centre joint is its own parent (its bone is zero).
    center: 1-based centre joint (the spatial partition measures distances from it).
  """
  name: str
  num_joints: int
  bones: tuple[tuple[int, int], ...]
  center: int

  @property
  def edges(self) -> list[tuple[int, int]]:
    """0-based undirected edges, self pairs removed."""
    return [(j - 1, p - 1) for j, p in self.bones if j != p]

  @property
  def parents(self) -> np.ndarray:
    """(V,) int, 0-based parent of each joint (the centre is its own parent)."""
    parents = np.arange(self.num_joints)
    for j, p in self.bones:
      parents[j - 1] = p - 1
    return parents


# NTU RGB+D: joint 21 (spine-shoulder) is the centre.
NTU_RGBD = Layout(
    name="ntu-rgb+d", num_joints=25, center=21,
    bones=((1, 2), (2, 21), (3, 21), (4, 3), (5, 21), (6, 5), (7, 6), (8, 7), (9, 21),
           (10, 9), (11, 10), (12, 11), (13, 1), (14, 13), (15, 14), (16, 15), (17, 1),
           (18, 17), (19, 18), (20, 19), (21, 21), (22, 23), (23, 8), (24, 25), (25, 12)))

# COCO keypoints (17 joints) as PySKL lays them out: the nose (joint 1) is the centre.
COCO = Layout(
    name="coco", num_joints=17, center=1,
    bones=((1, 1), (2, 1), (3, 1), (4, 2), (5, 3), (6, 1), (7, 1), (8, 6), (9, 7),
           (10, 8), (11, 9), (12, 6), (13, 7), (14, 12), (15, 13), (16, 14), (17, 15)))

LAYOUTS = {layout.name: layout for layout in (NTU_RGBD, COCO)}


def get_layout(name: str) -> Layout:
  if name not in LAYOUTS:
    raise ValueError(f"Unknown skeleton layout {name!r}; known: {sorted(LAYOUTS)}.")
  return LAYOUTS[name]


def hop_distance(num_joints: int, edges, max_hop: int = 1) -> np.ndarray:
  """(V, V) graph distance in hops, `inf` beyond `max_hop`."""
  a = np.zeros((num_joints, num_joints))
  for i, j in edges:
    a[i, j] = a[j, i] = 1
  hops = np.full((num_joints, num_joints), np.inf)
  reach = np.stack([np.linalg.matrix_power(a, d) for d in range(max_hop + 1)]) > 0
  for d in range(max_hop, -1, -1):
    hops[reach[d]] = d
  return hops


def normalize_columns(a: np.ndarray) -> np.ndarray:
  """Divides each column by its sum (ST-GCN's `normalize_digraph`); empty columns stay 0."""
  degree = a.sum(axis=0)
  inverse = np.where(degree > 0, 1.0 / np.where(degree > 0, degree, 1.0), 0.0)
  return a * inverse[None, :]


def adjacency(layout: Layout | str, strategy: str = "spatial", max_hop: int = 1,
              dilation: int = 1) -> np.ndarray:
  """ST-GCN's partitioned adjacency `A`, float32 `(K, V, V)`.

  `A[k, v, w]` weighs joint v's message to joint w in subset k; the graph convolution
  computes `y[w] = sum_k sum_v x_k[v] A[k, v, w]`. With `spatial`, K = 3 for max_hop 1:
  root (self), centripetal (neighbours no farther from the centre than w, self excluded)
  and centrifugal (neighbours farther from the centre); the union is the column-normalised
  1-hop neighbourhood.
  """
  if isinstance(layout, str):
    layout = get_layout(layout)
  v = layout.num_joints
  center = layout.center - 1
  hops = hop_distance(v, layout.edges, max_hop)
  valid_hops = range(0, max_hop + 1, dilation)
  normalized = normalize_columns(np.isin(hops, list(valid_hops)).astype(np.float64))

  if strategy == "uniform":
    subsets = [normalized]
  elif strategy == "distance":
    subsets = [np.where(hops == hop, normalized, 0.0) for hop in valid_hops]
  elif strategy == "spatial":
    subsets = []
    # Distance to the centre of the sending joint (rows) vs the receiving one (columns).
    sender = hops[:, center][:, None]
    receiver = hops[:, center][None, :]
    for hop in valid_hops:
      at_hop = hops == hop
      root = np.where(at_hop & (sender == receiver), normalized, 0.0)
      centripetal = np.where(at_hop & (sender > receiver), normalized, 0.0)
      centrifugal = np.where(at_hop & (sender < receiver), normalized, 0.0)
      if hop == 0:
        subsets.append(root)
      else:
        subsets += [root + centripetal, centrifugal]
  else:
    raise ValueError(f"Unknown partition strategy {strategy!r}: use uniform, distance or spatial.")
  return np.stack(subsets).astype(np.float32)
