# The README's two commands: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The oldest huggingface_hub that pyproject.toml declares, beside the pinned one, for tests/test_hub.py.
HUB_OLDEST := $(VENV)/hub-oldest

.PHONY: demo test lint install clean web wheel chromium

# A new .venv holds torch with its CUDA libraries: 6.0 GB, 6.4 GB at the peak of the install (measured);
# with less free, stop before pip does, with one line that says so.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -c "import shutil, sys; free = shutil.disk_usage('.').free / 1e9; \
	  sys.exit(0 if free >= 6.5 else f'make: a new .venv needs about 6.5 GB of disk (torch and its CUDA libraries) and {free:.1f} GB are free here: free some space, then run make again')"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tinycats demo --out demo

$(HUB_OLDEST)/.installed: $(STAMP)
	rm -rf $(HUB_OLDEST)
	$(BIN)/python -m pip install --quiet --target $(HUB_OLDEST) "huggingface_hub==1.0.1"
	touch $@

# The browser page: npm packages from the lockfile, built into src/tinycats/page (package data:
# `tinycats web` serves it, and the wheel carries it).
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

PAGE := src/tinycats/page/index.html
$(PAGE): web/node_modules/.installed web/build.mjs $(wildcard web/src/*)
	cd web && node build.mjs

web: $(PAGE)

# The sdist and, built from it, the wheel (page and presets inside) into dist/.
wheel: $(STAMP) $(PAGE)
	$(BIN)/python -m build --no-isolation --outdir dist .

# Debian's Chromium for the browser tests (playwright-core drives it; it downloads no browser).
chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the browser tests"; \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -qq chromium >/dev/null; }

test: $(STAMP) $(HUB_OLDEST)/.installed web chromium
	$(BIN)/ruff check src tests benchmarks
	PYTHONPATH=$(HUB_OLDEST) $(BIN)/python -m pytest -q tests/test_hub.py
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) demo build dist src/*.egg-info web/node_modules src/tinycats/page
