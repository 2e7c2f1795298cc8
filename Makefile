# Two commands for learners: `make lab` and `make test`. Each creates .venv on first use and reuses it after.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LAB_ARGS ?=  # e.g. make lab LAB_ARGS="--no-browser --port 8899"

.PHONY: setup lab test course slides browser clean gpu-prepare gpu-check

# (re)install when the pins or the package metadata change
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install the pinned environment

lab: setup  ## open JupyterLab on the notebooks
	$(BIN)/jupyter lab --notebook-dir=notebooks --LabApp.news_url=None $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: setup  ## the whole test suite, notebooks included (smoke size)
	$(BIN)/python -m pytest

course: setup  ## execute every notebook into build/ (executed .ipynb), build/html/ (pages and index.html)
	$(BIN)/python -m dcgan_utils.course.build --out build

slides: setup  ## the lecture notebooks (01-03) as reveal.js slides in build/slides/
	$(BIN)/python -m dcgan_utils.course.build --slides --out build

browser:  ## Debian's Chromium for the browser test (tests/test_browser.py skips without it, except in CI)
	command -v chromium >/dev/null || { $(if $(filter 0,$(shell id -u)),,sudo) apt-get update -q && \
	  $(if $(filter 0,$(shell id -u)),,sudo) apt-get install -y -q --no-install-recommends chromium; }

KIT := .gpu-kit
SHARED ?= ../shared/data
WHEELS_FOR_GPU := --python-version 3.12 --implementation cp --only-binary=:all: --platform manylinux2014_x86_64 \
	--platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64
gpu-prepare: setup  ## here, before a GPU run: MNIST, the CIFAR-10 subset and papermill + a kernel (Python 3.12) into .gpu-kit/
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
