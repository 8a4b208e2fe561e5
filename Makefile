# Set-up is two commands: `make run` and `make test`. Each prepares everything it needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test bench lint format migrate services clean

install: $(STAMP)
$(STAMP): setup.cfg pyproject.toml client/setup.cfg
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./client -e ".[dev]"
	touch $(STAMP)

run: install
	scripts/run.sh

test: install
	scripts/test.sh $(ARGS)

# make bench BASELINE=../other-checkout: this code against that one, interleaved
bench: install
	scripts/bench.sh $(if $(BASELINE),--baseline $(BASELINE))

CODE := app client devtools bench tests

lint: install
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff check --fix $(CODE)
	$(VENV)/bin/ruff format $(CODE)

migrate: install
	scripts/dotenv.sh && . scripts/lib.sh && load_env && $(PY) -m app.cli create-db && $(PY) -m app.cli migrate

services: install
	. scripts/lib.sh && load_env && scripts/services.sh "$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/jwt_refresh}" "$${REDIS_URL:-redis://127.0.0.1:6379/0}"

clean:
	-scripts/stop-local.sh
	rm -rf $(VENV) .local build *.egg-info .pytest_cache .mypy_cache .ruff_cache
