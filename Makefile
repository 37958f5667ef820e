# One command each on a fresh machine: `make serve` (venv + install + the service on its
# embedded default) and `make test` (venv + install + lint and type checks + the whole test suite).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint browser docker-tools bench-quick bench clean

SERVER_STAMP := $(VENV)/.installed-server

# exact versions from constraints.txt; torch first, from the wheel on this disk or the CPU
# index (a plain torch from PyPI is a multi-GB CUDA build)
$(SERVER_STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt torch
	$(BIN)/pip install -q -c constraints.txt -e '.[server]'
	touch $(SERVER_STAMP)

$(STAMP): $(SERVER_STAMP)
	$(BIN)/pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# the service alone: no test tools
serve: $(SERVER_STAMP)
	$(BIN)/mhinr serve --host 127.0.0.1 --port 8000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Debian's Chromium and ChromeDriver for the web page's test (nothing downloads a browser),
# and axe-core (the accessibility checker the test runs in that Chromium) from npm.
AXE_VERSION := 4.14.1
AXE := tests/.axe/node_modules/axe-core/axe.min.js
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver) || \
	  echo "could not install chromium: the browser test is skipped here and fails under CI"
	@grep -qs '"version": "$(AXE_VERSION)"' tests/.axe/node_modules/axe-core/package.json || \
	  npm install --silent --no-audit --no-fund --no-save --prefix tests/.axe axe-core@$(AXE_VERSION) || \
	  echo "could not install axe-core: the accessibility check is skipped here and fails under CI"

# Debian's Docker engine, docker-compose 1.29 and debootstrap for the compose test, which starts
# its own dockerd and builds its base images from Debian packages (no registry is needed).
docker-tools:
	@command -v dockerd >/dev/null && command -v docker-compose >/dev/null && \
	  command -v debootstrap >/dev/null || \
	  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    docker.io docker-compose debootstrap) || \
	  echo "could not install docker: the compose test is skipped here and fails under CI"

test: $(STAMP) lint browser docker-tools
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
