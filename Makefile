# Two commands for learners: `make lab` and `make test`. Each creates .venv on first use and reuses it after.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_ARGS ?=  # e.g. make lab LAB_ARGS="--no-browser --port 8899"

.PHONY: setup lab test course slides browser clean

# (re)install when the pins or the package metadata change
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the pinned environment

lab: setup  ## open JupyterLab on the notebooks
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: setup  ## the whole test suite, notebooks included (smoke size)
	$(BIN)/python -m pytest

course: setup  ## execute every notebook into build/ (executed .ipynb), build/html/ (pages and index.html)
	$(BIN)/python -m dcgan_utils.course --out build

slides: setup  ## the lecture notebooks (01-03) as reveal.js slides in build/slides/
	$(BIN)/python -m dcgan_utils.course --slides --out build

browser:  ## Debian's Chromium for the browser test (tests/test_browser.py skips without it, except in CI)
	command -v chromium >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q --no-install-recommends chromium; }

clean:  ## remove build outputs (keeps .venv and data/)
	rm -rf build .pytest_cache
