# The README's two commands: `make run` and `make test`. Both set up a venv on first use.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# Pinned here because this machine kind's torch/torchvision pair must match; elsewhere override
# e.g. `make run TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
RUN_ARGS ?=

.PHONY: install run test clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

run: install
	$(VENV)/bin/ganbench run $(RUN_ARGS)

test: install
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
