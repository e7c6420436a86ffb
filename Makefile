# The two Quick-start commands (see README.md):
#   make demo   set up the engine environment (.venv) and run the demo
#   make test   set up the development environment and run lint, type checks and the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test setup setup-dev lint typecheck pytest bench docs

setup:
	$(PY) install.py --no-hosts

setup-dev:
	$(PY) install.py --no-hosts --dev --with-rvm

demo: setup
	$(BIN)/sparsemat demo

lint:
	$(BIN)/ruff check .

typecheck:
	$(BIN)/mypy

pytest:
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

test: setup-dev lint typecheck pytest

bench: setup-dev
	$(BIN)/sparsemat bench --docs docs/benchmarks.md --plots docs/img
