PY := .venv/bin/python

.PHONY: setup run test unit lint bench

setup:  ## install into .venv
	bash scripts/setup.sh

run:  ## install and run the service with a demo catalogue
	bash scripts/run.sh

test:  ## install everything and run the whole suite (what CI runs)
	bash scripts/test.sh

unit:  ## fast tests only
	$(PY) -m pytest -q -m "not integration and not slow"

lint:  ## ruff and mypy, as CI runs them
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench:  ## figures on ../shared/eval (about half an hour)
	bash scripts/benchmark.sh
