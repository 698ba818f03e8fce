# Hanji: `make run` serves the example applets, `make test` runs the whole suite.
# Both create .venv and install what they need on a fresh machine.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8899

.PHONY: install run test browser-deps postgres-deps service-deps jupyter bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## Serve the example applets on http://127.0.0.1:8899/ (SQLite in ./.hanji).
run: install
	$(BIN)/hanji serve --host $(HOST) --port $(PORT) --applets applets

## Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; }

## Debian's PostgreSQL for the data tests (they start a throwaway cluster of their own;
## HANJI_TEST_POSTGRES=0 skips those variants).
postgres-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  echo "Installing Debian's postgresql for the data tests"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; }

## Debian's redis-server and HAProxy for the multi-process tests (each test starts throwaway
## instances of its own on free ports).
service-deps:
	@command -v redis-server >/dev/null 2>&1 && command -v haproxy >/dev/null 2>&1 || { \
	  echo "Installing Debian's redis-server and haproxy for the multi-process tests"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server haproxy; }

## Run the whole suite (server, notebook kernels, websockets, browser, SQLite and PostgreSQL).
test: install browser-deps postgres-deps service-deps
	$(BIN)/python -m pytest

## JupyterLab with the tutorial notebooks.
jupyter: install
	$(BIN)/python -m pip install -q -e '.[test,jupyter]'
	cd notebooks && ../$(BIN)/jupyter lab $$(test "$$(id -u)" = 0 && echo --allow-root)

## Benchmarks side by side; writes bench/RESULTS.md.
bench: install
	$(BIN)/python -m pip install -q -e '.[test,bench]'
	@command -v wrk >/dev/null 2>&1 || { SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq wrk; }
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .hanji *.egg-info test-artifacts
