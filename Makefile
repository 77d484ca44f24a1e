# `make test` works on a fresh machine: it creates .venv, installs what is needed and
# runs the whole suite (slow tests included). `make demo` needs only the runtime packages.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
# The CPU convolution flag (see freqjax/xla_env.py), kept beside what the user set.
export XLA_FLAGS := $(XLA_FLAGS) --xla_cpu_experimental_ynn_fusion_type=
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: test test-fast demo bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(RUNTIME): requirements.txt | $(PY)
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV): requirements-dev.txt $(RUNTIME)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

test: $(DEV)
	$(PY) -m pytest -n 2 --dist worksteal tests

test-fast: $(DEV)
	$(PY) -m pytest -n 2 -m "not slow" tests

demo: $(RUNTIME)
	$(PY) -m freqjax.demo --workdir runs/demo

bench: $(DEV)
	$(PY) benchmarks/encoder.py
	$(PY) benchmarks/train_step.py
	$(PY) benchmarks/input_pipeline.py

clean:
	rm -rf $(VENV) .pytest_cache
