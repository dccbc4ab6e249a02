# The README's two commands: `make run` and `make test` (and `make docs`). All set up a venv on first use.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# Pinned here because this machine kind's torch/torchvision pair must match; elsewhere override
# e.g. `make run TORCH_SPEC="torch torchvision"`.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
RUN_ARGS ?=
# The report's image tables get chance / degraded / real-vs-real rows (pixel-shuffled, blurred and
# real training images scored by the same protocol): ~10 s more on two cores.
REPORT_ARGS ?= --image-references
# `make run` trains GRID into STORE, then writes the report (tables, figures, index.md) into
# results/<GRID>/.
GRID ?= cpu-default
STORE ?= runs/default

.PHONY: install run run-full run-timed test docs clean-venv

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

# The report is written when run finished (0) or some cells failed (1; the tables show them as
# failed); not after bad input (2), Ctrl-C (130) or SIGTERM (143). The recipe exits with run's
# status (make reports it as "Error N").
run: install
	status=0; $(VENV)/bin/ganbench run --grid $(GRID) --store $(STORE) $(RUN_ARGS) || status=$$?; \
	if [ $$status -eq 0 ] || [ $$status -eq 1 ]; then \
	  $(VENV)/bin/ganbench report --store $(STORE) --grid $(GRID) --out results/$(GRID) $(REPORT_ARGS) || exit $$?; \
	fi; exit $$status

# The same protocol over every applicable trick, with grid25 and converged budgets (hours on two
# cores): the default answers a focused question; this is the full one.
run-full:
	$(MAKE) --no-print-directory run GRID=cpu-study STORE=runs/study

# `make run` from a fresh store, timed: the wall time of the run and of the report, and the run's
# split into training and scoring (benchmarks/make_run_time.py). STORE must not exist yet.
run-timed: install
	$(PY) benchmarks/make_run_time.py --fresh --grid $(GRID) --store $(STORE) --out results/$(GRID) $(REPORT_ARGS)

# The tests, then the docs built with --strict (a broken link or a reference page that no longer
# renders from the code fails the build).
test: install
	$(PY) -m pytest -q
	$(MAKE) --no-print-directory docs

# The docs site into site/ (reference pages are generated from the code at build time).
docs: install
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(VENV)/bin/mkdocs build --strict --site-dir site

clean-venv:
	rm -rf $(VENV)
