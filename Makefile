PY ?= .venv/bin/python
DATA ?= $(abspath ../shared/data)

.PHONY: install demo test lint bench

.venv/bin/python:
	python3 -m venv .venv

install: .venv/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"

# the demo needs only the package itself (the test extras add a browser driver and more)
demo: .venv/bin/python
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	NEUROMODMAP_DATA=$(DATA) .venv/bin/neuromodmap demo

test: install
	NEUROMODMAP_DATA=$(DATA) $(PY) -m pytest -q
	$(PY) -m ruff check src tests benchmarks

lint:
	$(PY) -m ruff check src tests benchmarks

bench:
	NEUROMODMAP_DATA=$(DATA) $(PY) benchmarks/trials_throughput.py
