"""The ST-GCN `ntu-rgb+d` / `spatial` adjacency, checked by hand-derived properties."""
import numpy as np
import pytest

from freqjax import graph


@pytest.fixture(scope="module")
def a():
  return graph.adjacency("ntu-rgb+d", "spatial")


def test_shape_and_centre(a):
  assert a.shape == (3, 25, 25) and a.dtype == np.float32
  assert graph.NTU_RGBD.center == 21
  hops = graph.hop_distance(25, graph.NTU_RGBD.edges, max_hop=25)
  # Joint 21 (spine-shoulder) neighbours: 2 (spine-mid), 3 (neck), 5 and 9 (shoulders).
  assert sorted(np.flatnonzero(hops[20] == 1) + 1) == [2, 3, 5, 9]


def test_subsets_partition_the_one_hop_neighbourhood(a):
  support = a > 0
  # No entry belongs to two subsets.
  assert support.sum(axis=0).max() == 1
  hops = graph.hop_distance(25, graph.NTU_RGBD.edges, max_hop=1)
  np.testing.assert_array_equal(support.any(axis=0), hops <= 1)
  # Subset 0 is exactly the self loops.
  np.testing.assert_array_equal(support[0], np.eye(25, dtype=bool))


def test_column_normalisation(a):
  # Each column w is divided by the size of w's closed neighbourhood: the three subsets
  # together sum to 1, and subset k holds (#members of k in the neighbourhood) / degree.
  degree = (graph.hop_distance(25, graph.NTU_RGBD.edges, 1) <= 1).sum(axis=0)
  np.testing.assert_allclose(a.sum(axis=(0, 1)), np.ones(25), rtol=1e-6)
  for k in range(3):
    np.testing.assert_allclose(a[k].sum(axis=0), (a[k] > 0).sum(axis=0) / degree, rtol=1e-6)
  # Joint 21 has 4 neighbours + itself: every non-zero entry of its column is 1/5.
  column = a[:, :, 20]
  np.testing.assert_allclose(column[column > 0], 0.2, rtol=1e-6)


def test_centripetal_and_centrifugal_by_hand(a):
  j = lambda one_based: one_based - 1
  # Column = receiving joint w. For w = 2 (spine-mid, 1 hop from the centre): joint 21 is
  # nearer the centre (centrifugal subset 2 in ST-GCN's code), joint 1 (base) is farther
  # (subset 1 with the root).
  assert a[2, j(21), j(2)] > 0 and a[1, j(21), j(2)] == 0
  assert a[1, j(1), j(2)] > 0 and a[2, j(1), j(2)] == 0
  # For w = 21 (the centre) every neighbour is farther: all in subset 1.
  for v in (2, 3, 5, 9):
    assert a[1, j(v), j(21)] > 0
  assert a[2, :, j(21)].sum() == 0
  # NTU links the right hand tip 24 to the thumb 25, not to the hand 12.
  assert a[:, j(24), j(25)].sum() > 0 and a[:, j(24), j(12)].sum() == 0


def test_parents_and_other_layouts():
  parents = graph.NTU_RGBD.parents
  assert parents[20] == 20 and parents[0] == 1 and parents[24] == 11
  coco = graph.adjacency("coco", "spatial")
  assert coco.shape == (3, 17, 17)
  np.testing.assert_allclose(coco.sum(axis=(0, 1)), np.ones(17), rtol=1e-6)
  with pytest.raises(ValueError, match="Unknown skeleton layout"):
    graph.adjacency("kinect-v3")
  with pytest.raises(ValueError, match="strategy"):
    graph.adjacency("ntu-rgb+d", "nonsense")
