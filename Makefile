# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
RUNTIME_STAMP := $(VENV)/.runtime-$(HASH)
DEV_STAMP     := $(VENV)/.dev-$(HASH)
# Records of the synthetic fixture patients are dated around this day; the sandbox reads them as of it.
FIXTURE_DAY ?= 2026-03-01
# `make run PORT=8081` when 8080 is taken.
PORT ?= 8080

.PHONY: run test test-fast check bench load-test load-test-hostile fhir-server fhir-server-stop card-report mutation clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The service alone (what `make run` needs).
$(RUNTIME_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "Installing the service into $(VENV) ..."
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.runtime-*; touch $@

# The service with the test, lint and benchmark tools.
$(DEV_STAMP): pyproject.toml | $(VENV)/bin/python
	@echo "Installing the service with its test and benchmark tools into $(VENV) ..."
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	rm -f $(VENV)/.dev-* $(VENV)/.runtime-*; touch $@ $(RUNTIME_STAMP)

## run: serve the service with the sandbox on http://127.0.0.1:$(PORT) (fixture patients read as of $(FIXTURE_DAY))
run: $(RUNTIME_STAMP)
	CDS_SANDBOX=true CDS_TODAY=$(FIXTURE_DAY) $(BIN)/sarcoma-cds serve --host 127.0.0.1 --port $(PORT)

## test: lint and type checks, then every test (installs Chromium, nginx, PostgreSQL, Redis and the FHIR test server)
test: check
	bash scripts/install-test-packages.sh
	bash scripts/fhir-test-server.sh install
	$(BIN)/python -m pytest

## check: ruff (lint and format) and mypy (strict on summary/, staging/, knowledge/, protocol/)
check: $(DEV_STAMP)
	$(BIN)/ruff check cds_service tests bench scripts fhir_fixtures
	$(BIN)/ruff format --check cds_service tests bench scripts fhir_fixtures
	$(BIN)/mypy cds_service

## test-fast: unit and scenario tests only (no FHIR server, no browser)
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest tests/unit tests/scenario

## card-report: cards per chart, words and the ten-second view of every fixture patient (R6)
card-report: $(RUNTIME_STAMP)
	$(BIN)/sarcoma-cds card-report --out docs/card-report.txt

## bench: latency and throughput against the floor app; writes bench/results/
bench: $(DEV_STAMP)
	$(BIN)/python bench/run.py

## load-test: the service under gunicorn against a slow, failing and down FHIR server (127.0.0.1 only)
load-test: $(DEV_STAMP)
	$(BIN)/python scripts/load_test.py --duration 10

## load-test-hostile: header and JWKS trickles, slowloris through nginx, a junk-jku flood, worker memory under the largest answers
load-test-hostile: $(DEV_STAMP)
	bash scripts/install-test-packages.sh
	cd bench && ../$(BIN)/python hostile.py --duration 10

## mutation: mutation score of summary/ and staging/ per module (mutmut; MODULES="staging summary/tnm.py" for fewer, SAMPLE=10 for one mutant in ten)
mutation: $(DEV_STAMP)
	$(BIN)/python -c 'import mutmut' 2>/dev/null || $(BIN)/python -m pip install --quiet -e '.[test,bench,mutation]'
	$(BIN)/python scripts/mutation.py $(if $(SAMPLE),--sample $(SAMPLE)) $(MODULES)

## fhir-server: a local FHIR R4 test server with the fixtures (prints its URL; token: test-token)
fhir-server: $(RUNTIME_STAMP)
	bash scripts/fhir-test-server.sh install
	bash scripts/fhir-test-server.sh start
	bash scripts/fhir-test-server.sh load

fhir-server-stop:
	bash scripts/fhir-test-server.sh stop

clean:
	rm -rf $(VENV) .fhir-server var test-artifacts .mypy_cache .ruff_cache
