"""XLA flags freqjax needs before jax starts.

Importing this module has no side effects; call `configure()` before the first
`import jax` (entry points and `tests/conftest.py` do).
"""
import os

# Since jaxlib 0.9.1, XLA:CPU fuses convolutions through YNNPACK, which makes the weight
# gradient of a temporal convolution 30-50x slower. An empty fusion type turns that off;
# results are bit-identical and the flag is ignored on GPU/TPU.
CPU_CONV_FLAG = "--xla_cpu_experimental_ynn_fusion_type="


def configure() -> None:
  """Adds freqjax's XLA flags to `XLA_FLAGS`, keeping whatever the user set."""
  flags = os.environ.get("XLA_FLAGS", "")
  if "--xla_cpu_experimental_ynn_fusion_type" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} {CPU_CONV_FLAG}".strip()
