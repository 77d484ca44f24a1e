# `make test` works on a fresh machine: it creates .venv, installs what is needed and
# runs the whole suite (slow tests included). `make demo` runs the synthetic demo.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The CPU convolution flag (see freqjax/xla_env.py); kept beside what the user set.
export XLA_FLAGS := $(XLA_FLAGS) --xla_cpu_experimental_ynn_fusion_type=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: test test-fast demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --upgrade --quiet pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 tests

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -m "not slow" tests

demo: $(STAMP)
	$(PY) -m freqjax.demo --workdir runs/demo

bench: $(STAMP)
	$(PY) benchmarks/encoder.py

clean:
	rm -rf $(VENV) .pytest_cache
