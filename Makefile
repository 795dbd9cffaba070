# DebateLab: `make run` (embedded platform with demo data on :8000) and `make test` (the whole suite
# against real PostgreSQL and Redis, plus browser tests in headless Chromium). `make test-fast` runs
# the pure cores and the in-process tests with no services (SQLite, in-memory channel layer);
# `make lint` runs ruff and mypy. CONTRIBUTING.md says when to run which.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/debatelab
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: run test test-fast lint services browser node install clean

$(VENV)/.installed: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "DebateLab needs Python 3.11 (found " + sys.version.split()[0] + ")")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $@

install: $(VENV)/.installed

run: install
	@mkdir -p var
	DEBUG=1 $(PY) manage.py migrate --noinput -v0
	DEBUG=1 $(PY) manage.py collectstatic --noinput -v0
	DEBUG=1 $(PY) manage.py seed_demo
	@echo ""
	@echo "  DebateLab is running at http://$(HOST):$(PORT)/   (Ctrl-C stops it)"
	@echo ""
	DEBUG=1 $(VENV)/bin/daphne -b $(HOST) -p $(PORT) config.asgi:application

services:
	@platform/ensure-services.sh

browser:  # Playwright drives Debian's chromium; it downloads no browser of its own
	@platform/ensure-debian-command.sh chromium chromium "the browser tests"

node:
	@platform/ensure-debian-command.sh node nodejs "the JavaScript tests"

test: install services browser node
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(PY) -m pytest $(PYTEST_ARGS)

# No services: SQLite in memory, the in-memory channel layer; tests that need more are deselected.
FAST_TESTS := not slow and not browser and not services and not postgresql and not subprocess
test-fast: install
	DATABASE_URL= REDIS_URL= $(PY) -m pytest -q -m "$(FAST_TESTS)" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) var test-artifacts
