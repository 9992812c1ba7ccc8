# Every developer and CI command goes through here; `make help` lists them.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install system doctor run test lint format bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# The system packages first (config/system-packages.txt): a few milliseconds when present.
system: ## Install the missing system packages (as root with apt) or print the command
	@$(PYTHON) scripts/machine.py install

install: system $(STAMP) ## Install the system packages, create the virtualenv, install the project

doctor: ## Show which optional system components are present, missing or degraded
	@$(PYTHON) scripts/machine.py doctor

run: install ## Run everything on this machine (SQLite, embedded broker, demo data)
	$(BIN)/billing run

lint: install ## Check style (ruff), the architecture's import contracts and the types
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

test: lint ## Lint, then run the whole test suite
	$(BIN)/pytest -n 2

format: $(STAMP) ## Fix what ruff can fix
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install ## Run every benchmark in quick mode
	@for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b --quick || exit 1; done

clean: ## Remove the virtualenv, caches and the embedded data directory
	rm -rf $(VENV) .pytest_cache .ruff_cache data *.egg-info
