# gridsvc: the two README commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := run

PG_MAJOR ?= 15
APT_PACKAGES := python3 python3-venv postgresql-$(PG_MAJOR) postgresql-$(PG_MAJOR)-postgis-3 \
	libsqlite3-mod-spatialite gdal-bin chromium chromium-driver wrk fonts-wqy-microhei \
	python3-qgis qgis-providers
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HOST ?= 127.0.0.1
PORT ?= 5000
# Browser assets (Leaflet, plugins) served under /vendor/, from the npm registry.
ASSETS ?= $(or $(GRIDSVC_ASSETS_DIR),vendor)

.PHONY: run test fuzz install system-deps lint bench bench-province load demo-files clean

## Install everything, create the embedded database, load the demo city and serve it.
run: install
	$(BIN)/gridsvc init-db
	$(BIN)/gridsvc demo
	$(BIN)/gridsvc serve --host $(HOST) --port $(PORT)

## Install everything and run the whole test suite on SpatiaLite and PostGIS.
test: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

## Schemathesis on both OpenAPI documents (/api/v1 and /ogc/api), 50 requests per operation
## and database (make test sends 10).
FUZZ_EXAMPLES ?= 50
fuzz: install
	GRIDSVC_TEST_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/test_fuzz_api.py -p no:cacheprovider

install: system-deps $(VENV)/.installed $(ASSETS)/.installed

# Debian packages: installed only when one is missing, so repeated runs need no network.
system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq nodejs npm; }

$(VENV)/.installed: pyproject.toml
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# npm ci of the pinned package.json/package-lock.json, then the derived files; see gridsvc/maps/assets.py.
$(ASSETS)/.installed: package.json package-lock.json $(VENV)/.installed
	$(BIN)/python -m gridsvc.maps.assets $(ASSETS)
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

## Benchmarks: figures printed as ratios against baselines measured in the same run.
bench: install
	$(BIN)/python bench/run.py --json bench/out/latest.json --markdown bench/out/latest.md

## Province scale (issue 13 item 7; not in make test): the index on ~760,000 generated building
## micro-grids and 10 million points (PROVINCE_SCALE=city PROVINCE_POINTS=1000000 for a smaller run).
PROVINCE_SCALE ?= province
PROVINCE_POINTS ?= 10000000
bench-province: install
	$(BIN)/python bench/run.py --province --no-postgis --province-scale $(PROVINCE_SCALE) --points $(PROVINCE_POINTS) \
		--json bench/out/province.json --markdown bench/out/province.md

## Load test only: a fixed number of requests in a mix of callers, against the floor.
load: install
	$(BIN)/python bench/run.py --only-load --json bench/out/load.json --markdown bench/out/load.md

## Regenerate the shipped small demo city in boundaries/demo/.
demo-files: install
	$(BIN)/gridsvc demo --seed 1 --scale small --out boundaries/demo --no-load

clean:
	rm -rf $(VENV) instance .pytest_cache $(ASSETS)
