# The two commands of the README: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint typecheck bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt "torch==2.13.0"
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m mlflow_tune.cli.demo

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check mlflow_tune plugins tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,bench]"
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/process.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/writer.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/trial_report.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/overhead.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/search.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/stages.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/diagnostics/score.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/diagnostics/families.py
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) mlflow.db mlartifacts
