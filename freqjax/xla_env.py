"""Process settings freqjax needs before jax starts: XLA flags and the C allocator.

Importing this module has no side effects; call `configure()` before the first
`import jax` (entry points and `tests/conftest.py` do).
"""
import ctypes
import os
import sys

# Since jaxlib 0.9.1, XLA:CPU fuses convolutions through YNNPACK, which makes the weight
# gradient of a temporal convolution 30-50x slower. An empty fusion type turns that off;
# results are bit-identical and the flag is ignored on GPU/TPU.
CPU_CONV_FLAG = "--xla_cpu_experimental_ynn_fusion_type="

# The values of `FREQJAX_MALLOC` and what each means (see `reuse_freed_memory`).
MALLOC_ENV = "FREQJAX_MALLOC"
MALLOC_CHOICES = {"reuse": "keep freed memory for reuse, the default",
                  "glibc": "glibc's own settings"}

# mallopt(3) parameters, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8


def configure() -> None:
  """Adds freqjax's XLA flags to `XLA_FLAGS`, keeping whatever the user set, and sets
  glibc's allocator to keep freed memory (`reuse_freed_memory`) unless `FREQJAX_MALLOC`
  is `glibc`.

  Exits with status 2 and one line naming the variable when `FREQJAX_MALLOC` is neither
  `reuse` nor `glibc`.
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if "--xla_cpu_experimental_ynn_fusion_type" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {CPU_CONV_FLAG}".strip()
  malloc = os.environ.get(MALLOC_ENV, "reuse")
  if malloc not in MALLOC_CHOICES:
    choices = " or ".join(f"{name} ({meaning})" for name, meaning in MALLOC_CHOICES.items())
    print(f"error: environment variable {MALLOC_ENV}={malloc!r}: use {choices}.",
          file=sys.stderr)
    raise SystemExit(2)
  if malloc == "reuse":
    reuse_freed_memory()


def reuse_freed_memory() -> None:
  """Makes glibc's malloc keep the memory a program frees, for the next allocation.

  XLA:CPU allocates each run's temporary buffer (1.3 GB for the base pretraining step at
  batch 64) and its large outputs from its worker threads. glibc serves a block of more
  than 32 MiB, and any block over 64 MiB asked for from a thread other than the main one,
  with a fresh `mmap`, and returns it to the kernel on `free`: every step then faults in
  every page of its buffers anew (330,000 page faults and about 1 CPU-second in the
  kernel per step of 8 s on 2 cores). One arena for all threads, no `mmap` and no
  trimming keep those pages mapped, so the next step reuses them. The process's resident
  memory then stays at its peak instead of shrinking between steps.

  It changes only where memory comes from, not any result. It applies to allocations
  made after the call (call it before jax starts its threads) and to the whole process,
  PyTorch included.

  Where the C library is not glibc (macOS, musl), nothing is changed.
  """
  try:
    libc = ctypes.CDLL(None)
    libc.gnu_get_libc_version  # pylint: disable=pointless-statement  (glibc only)
  except (OSError, AttributeError):
    return
  libc.mallopt(_M_ARENA_MAX, 1)
  libc.mallopt(_M_MMAP_MAX, 0)
  libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
