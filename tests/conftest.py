"""Test set-up, before jax starts: XLA flags, a compilation cache, offline Hugging Face.

The suite compiles many small train steps; XLA:CPU spends most of their time in LLVM
optimisation passes. Tests therefore compile at backend optimisation level 0 (same
semantics, faster compiles, slower kernels — benchmarks never use this) and share a
persistent compilation cache, which subprocesses (the fake-device runs) inherit.
"""
import os

from freqjax import xla_env

xla_env.configure()
if "--xla_backend_optimization_level" not in os.environ["XLA_FLAGS"]:
  os.environ["XLA_FLAGS"] += " --xla_backend_optimization_level=0"
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".pytest_cache", "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(items):
  """Runs the slow tests first (stable order otherwise): with `-n 2`, a minutes-long test
  that starts last keeps one core busy while the other has nothing left to do."""
  items.sort(key=lambda item: item.get_closest_marker("slow") is None)
