# The two commands a newcomer needs: `make demo` (the main job) and `make test` (the test suite).
# Each sets up its own virtual environment on first use.
#
# TORCH_SPEC: tests and CI use torch==2.13.0, which the CI and development machines take as a CPU build
# from their local wheels. Elsewhere PyPI's torch==2.13.0 is a CUDA build of several GB: a host without an
# NVIDIA GPU asks for the CPU one, `make setup TORCH_SPEC="torch==2.13.0 --index-url
# https://download.pytorch.org/whl/cpu"`, and a GPU host may pick its CUDA version, e.g. `.../whl/cu128`.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.crosspose-installed

.PHONY: setup demo test lint pytest clean browser-deps

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/crosspose demo $(ARGS)

lint: setup
	$(BIN)/ruff check service tests benchmarks
	$(BIN)/mypy

pytest: setup
	$(BIN)/python -m pytest $(ARGS)

test: browser-deps lint pytest

# Headless Chromium for the viewer's browser tests (marker `browser`; skipped when it is missing): `make test`
# installs it where it can (root with apt-get, as CI) and otherwise says that those tests will be skipped.
browser-deps:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	else echo "chromium not found: the browser tests will be skipped (apt-get install chromium)"; fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
