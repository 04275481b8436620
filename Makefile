# Two commands for a newcomer: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-fast bench load-test fhir-server fhir-server-stop clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	rm -f $(VENV)/.installed-*; touch $@

## run: set up .venv and serve the service with the sandbox on http://127.0.0.1:8080
run: $(STAMP)
	CDS_SANDBOX=true $(BIN)/sarcoma-cds serve --host 127.0.0.1 --port 8080

## test: set up .venv, Chromium and the FHIR test server, run every test
test: $(STAMP)
	bash scripts/install-browser.sh
	bash scripts/fhir-test-server.sh install
	$(BIN)/python -m pytest

## test-fast: unit and scenario tests only (no FHIR server, no browser)
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/scenario

## bench: latency and throughput against the floor app; writes bench/results/
bench: $(STAMP)
	bash scripts/fhir-test-server.sh install
	$(BIN)/python bench/run.py

## load-test: the service under gunicorn against a slow, failing and down FHIR server (127.0.0.1 only)
load-test: $(STAMP)
	$(BIN)/python scripts/load_test.py --duration 10

## fhir-server: a local FHIR R4 test server with the fixtures (prints its URL; token: test-token)
fhir-server: $(STAMP)
	bash scripts/fhir-test-server.sh install
	bash scripts/fhir-test-server.sh start
	bash scripts/fhir-test-server.sh load

fhir-server-stop:
	bash scripts/fhir-test-server.sh stop

clean:
	rm -rf $(VENV) .fhir-server var test-artifacts
