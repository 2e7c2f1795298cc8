# Two commands for learners: `make lab` and `make test`. Each creates .venv on first use and reuses it after.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LAB_ARGS ?=  # e.g. make lab LAB_ARGS="--no-browser --port 8899"
CPU ?=  # CPU=1: PyTorch's CPU-only wheels (about 1 GB instead of the CUDA builds' 6 GB), for a laptop without a GPU
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
PIP_EXTRA := $(if $(CPU),--extra-index-url $(TORCH_CPU_INDEX))
UV_EXTRA := $(if $(CPU),--extra-index-url $(TORCH_CPU_INDEX) --index-strategy unsafe-best-match)
# uv installs the environment (in CI on the 2-core AMX Xeon: 38 s for the 6 GB of CUDA builds with their bytecode,
# where pip took 74 s); it reads no pip.conf, so where a pip mirror or proxy is configured and uv fails, pip does the
# same install. --compile-bytecode, as pip does: without it each process compiles every installed package's module it
# imports from source, every time where bytecode is not written (PYTHONDONTWRITEBYTECODE=1, read-only environments):
# `import torchmetrics` took 10.0 s instead of 4.2 s on the 2-core Xeon, in every test process, kernel and CLI run
UV_INSTALL := $(BIN)/uv pip install --quiet --compile-bytecode
INSTALL = $(UV_INSTALL) --python $(BIN)/python $(UV_EXTRA) -c constraints.txt -e "$(1)" || { \
	echo "uv could not install; trying pip (slower; it reads your pip.conf)"; \
	$(BIN)/python -m pip install --quiet $(PIP_EXTRA) -c constraints.txt -e "$(1)"; }
# make test's pytest processes: one per CPU this process may use (TEST_JOBS=1: a single process)
TEST_JOBS ?= $(shell env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
XDIST := $(if $(filter-out 1,$(TEST_JOBS)),-n $(TEST_JOBS) --dist worksteal)
# The oldest Python the README promises (pyproject's requires-python): `make pins` and `make floors` run on it.
OLDEST ?= 3.10
OLDEST_PYTHON ?= $(shell for p in python$(OLDEST) $$(ls -d $$HOME/.pyenv/versions/$(OLDEST).*/bin/python$(OLDEST) 2>/dev/null); do \
	$$p -c "" 2>/dev/null && { command -v $$p || echo $$p; } && break; done)

.PHONY: setup lab test course slides student browser pins floors-env floors mutation mutmut clean gpu-prepare gpu-check

$(BIN)/python:
	@$(PYTHON) -c "import sys; sys.exit(sys.version_info < (3, 10))" || { \
	  echo "The course needs Python 3.10 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1). Run: make lab PYTHON=python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet -c constraints.txt uv

# (re)install when the pins or the package metadata change; a learner's `make lab` skips the test tools
$(VENV)/.installed-lab: pyproject.toml constraints.txt | $(BIN)/uv
	$(call INSTALL,.[lab])
	touch $@
$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/uv
	$(call INSTALL,.[test])
	touch $@ $(VENV)/.installed-lab

# JupyterLab's defaults for this environment: no "get notified about official Jupyter news?" popup over a notebook
# (news_url=None alone does not stop it; tests/test_browser.py checks a fresh learner's lab shows no popup)
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.d/dcgan-course.json
$(LAB_OVERRIDES): dcgan_utils/course/jupyterlab_overrides.json | $(BIN)/python
	mkdir -p $(dir $@)
	cp $< $@

setup: $(VENV)/.installed-test $(LAB_OVERRIDES)  ## create .venv with everything, test tools included

lab: $(VENV)/.installed-lab $(LAB_OVERRIDES)  ## open JupyterLab on the notebooks (installs the package and JupyterLab only)
	$(BIN)/jupyter lab --notebook-dir=notebooks --LabApp.news_url=None $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: $(VENV)/.installed-test $(LAB_OVERRIDES)  ## the whole test suite, notebooks included (smoke size), in TEST_JOBS processes
	$(BIN)/python -m pytest $(XDIST)

course: $(VENV)/.installed-test  ## execute every notebook into build/ (executed .ipynb), build/html/ (pages and index.html)
	$(BIN)/python -m dcgan_utils.course.build --out build

slides: $(VENV)/.installed-test  ## the lecture notebooks (01-03 and 06) as reveal.js slides in build/slides/
	$(BIN)/python -m dcgan_utils.course.build --slides --out build

student: $(VENV)/.installed-test  ## copies of every notebook without the solution cells, in build/student/
	$(BIN)/python -m dcgan_utils.course.student --out build/student

pins: | $(BIN)/uv  ## constraints.txt resolves on the oldest promised Python, wheels only (a resolution: nothing installed)
	$(BIN)/uv pip compile --quiet --python-version $(OLDEST) --only-binary :all: -c constraints.txt --extra test pyproject.toml -o /dev/null
	@echo "constraints.txt resolves on Python $(OLDEST) (what make lab's uv would install there)"

FLOORS := .venv-floors
floors-env: $(FLOORS)/.installed  ## .venv-floors: the stated version floors (constraints-floors.txt) on the oldest Python
$(FLOORS)/.installed: constraints-floors.txt pyproject.toml | $(BIN)/uv
	@test -n "$(OLDEST_PYTHON)" || { echo "make floors-env needs Python $(OLDEST) (set OLDEST_PYTHON=/path/to/python$(OLDEST))"; exit 1; }
	test -x $(FLOORS)/bin/python || $(BIN)/uv venv --quiet --seed -p $(OLDEST_PYTHON) $(FLOORS)  # --seed: pip, setuptools (as python -m venv on 3.10; torch 2.6's compiler imports setuptools)
	$(UV_INSTALL) --python $(FLOORS)/bin/python -c constraints-floors.txt -e ".[test]"
	$(FLOORS)/bin/python -c "import sys, torch, torchvision, numpy; print('floors:', sys.version.split()[0], 'torch', torch.__version__, 'torchvision', torchvision.__version__, 'numpy', numpy.__version__)"
	touch $@

floors: floors-env  ## the fast tests on the stated version floors (.venv-floors)
	$(FLOORS)/bin/python -m pytest $(XDIST) -q -p no:cacheprovider -m "not slow and not pinned"

mutation: $(VENV)/.installed-test  ## plant each of benchmarks/mutation.py's defects in a copy; report how many the tests catch
	$(BIN)/python benchmarks/mutation.py

mutmut: $(VENV)/.installed-test  ## mutmut 3 (pyproject's [tool.mutmut]): every mutant of losses, checkpoint and the checkers; the share killed per module
	$(BIN)/python -m pip install --quiet -c constraints.txt mutmut
	rm -rf mutants && mkdir -p build
	$(BIN)/mutmut run --max-children 2 > build/mutmut-run.log 2>&1 || { tail -20 build/mutmut-run.log; exit 1; }
	$(BIN)/mutmut results --all true | $(BIN)/python benchmarks/mutmut_scores.py

browser:  ## Debian's Chromium for the browser test (tests/test_browser.py skips without it, except in CI)
	command -v chromium >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q --no-install-recommends chromium; }

KIT := .gpu-kit
SHARED ?= ../shared/data
WHEELS_FOR_GPU := --python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux2014_x86_64 \
	--platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64
gpu-prepare: $(VENV)/.installed-test  ## here, before a GPU run: MNIST, the CIFAR-10 subset and papermill + a kernel (Python 3.12) into .gpu-kit/
	rm -rf $(KIT) && mkdir -p $(KIT)/data/MNIST/raw
	cp $(SHARED)/MNIST/raw/*.gz $(KIT)/data/MNIST/raw/
	tar -cf $(KIT)/cifar10-subset.tar -C $(SHARED) cifar10-subset
	$(BIN)/python -m pip install --quiet --target $(KIT)/site $(WHEELS_FOR_GPU) papermill "ipykernel==6.31.*" ipywidgets tqdm
	$(BIN)/python -m pip install --quiet --target $(KIT)/site $(WHEELS_FOR_GPU) --no-deps torch-fidelity
	cd $(KIT)/site && rm -rf debugpy* jedi* widgetsnbextension* share bin tzdata* && find . -name __pycache__ -prune -exec rm -rf {} +
	tar -cJf $(KIT)/site.tar.xz -C $(KIT)/site . && rm -rf $(KIT)/site
	du -sh $(KIT)  # with the checkout, under the 64 MiB a device call carries: run with carry [".gpu-kit"]

gpu-check:  ## on a CUDA machine, with its own python3: every CUDA path, one report (build/gpu-report.md)
	python3 benchmarks/gpu_check.py

clean:  ## remove build outputs (keeps .venv and data/)
	rm -rf build .pytest_cache
