# One command each: `make test` (venv + install + lint + tests), `make bench-quick`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint bench-quick bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(STAMP) lint
	$(BIN)/pytest -q

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks.paper_generalization --quick
	$(BIN)/python -m benchmarks.paper_spectral_bias --quick
	$(BIN)/python -m benchmarks.paper_comparison --quick

bench: $(STAMP)
	$(BIN)/python -m benchmarks.paper_generalization
	$(BIN)/python -m benchmarks.paper_spectral_bias
	$(BIN)/python -m benchmarks.paper_comparison

clean:
	rm -rf $(VENV) build *.egg-info
