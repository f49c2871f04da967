# One command to set up and run the main job (`make demo`), one to set up and run the tests
# (`make test`). Both create or update .venv from pyproject.toml first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-test

.PHONY: demo test lint bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,video]'
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

install: $(STAMP)

# Train DDPG on Pendulum-v1 with the default preset, one seed; ends with runs/demo/curve.png
# and the summary printed.
demo: $(STAMP)
	$(BIN)/ddpglab train --preset pendulum --seed 0 --out runs/demo --overwrite

# pytest exits 5 when it collected no test: a suite that vanished is a failure, not a pass.
# Runs the tests marked slow too; `$(BIN)/python -m pytest -m "not slow"` is a quicker local loop.
test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

$(VENV)/.installed-bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,video,bench]'
	$(BIN)/python -c "import torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/floor.py
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/pendulum_quality.py

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
