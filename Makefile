# egress-guard: every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=
GUARDRAILS ?= on
POLICY ?=
INSTANCES ?= 1

.PHONY: venv test demo up down bench fidelity package lint clean

venv: $(STAMP)
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip
	@$(PY) -m pip install -q -e '.[localcloud,test]'
	@touch $(STAMP)

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

demo: venv
	$(PY) -m localcloud.demo

up: venv
	$(PY) -m localcloud.stack up --guardrails=$(GUARDRAILS) --instances=$(INSTANCES) $(if $(POLICY),--policy=$(POLICY))

down: venv
	$(PY) -m localcloud.stack down

bench: venv
	$(PY) -m bench

fidelity: venv
	$(PY) -m localcloud.fidelity

package: venv
	$(PY) -m egress_guard.packaging dist/functions

clean: down
	rm -rf .local .bench dist
