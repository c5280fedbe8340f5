# Ferro AI Gateway: development tasks. `make run` and `make test` are the quick start.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PACKAGES := kernel $(sort $(dir $(wildcard providers/*/pyproject.toml strategies/*/pyproject.toml plugins/*/pyproject.toml examples/*/pyproject.toml)))
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install run test test-one lint bench clean

$(BIN)/.installed: Makefile requirements-dev.txt $(addsuffix pyproject.toml,$(filter-out kernel,$(PACKAGES))) kernel/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt uvloop $(addprefix -e ,$(PACKAGES))
	@touch $@

install: $(BIN)/.installed  ## create .venv and install every package (editable) plus test tools

run: install  ## start the gateway on $(HOST):$(PORT) (GATEWAY_CONFIG=file to use a config)
	$(BIN)/ferrogw serve --host $(HOST) --port $(PORT)

test: install  ## run every package's tests and the integration tests
	$(BIN)/python -m pytest -q

test-one: install  ## run one package's tests: make test-one PKG=providers/openai
	$(BIN)/python -m pytest -q $(PKG)

lint: install
	$(BIN)/ruff check .

bench: install  ## floor proxy vs gateway, stream and not, c=1 and c=32 (see bench/README.md)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
