# Two commands set everything up: `make run` and `make test` (both create .venv on first use).
PYTHON ?= python3
PROFILE ?= quick
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < pyproject.toml | cut -d' ' -f1)

# On the project's dev machines and CI the data and offline weights sit in ../shared.
SHARED := $(abspath ../shared)
ifeq ($(origin EMOLIB_DATA), undefined)
  ifneq ($(wildcard $(SHARED)/datasets/fer2013/archive.zip),)
    export EMOLIB_DATA := $(SHARED)/datasets/fer2013/archive.zip
  endif
endif
MOBILENET := mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5
ifeq ($(origin KERAS_HOME), undefined)
  ifneq ($(wildcard $(SHARED)/models/keras/$(MOBILENET)),)
    export KERAS_HOME := $(abspath $(VENV))/keras
  endif
endif

.PHONY: install hooks offline-weights run test test-fast lint lab tensorboard strip clean-cache
install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@$(MAKE) --no-print-directory hooks
	@rm -f $(VENV)/.installed-* && touch $@

# Notebooks enter git without outputs: a clean filter (nbstripout, named in .gitattributes) strips
# them on `git add`, and `git diff` compares stripped copies. Set up with the venv, in this clone
# only; outside a git checkout there is nothing to do.
hooks:
	@if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then \
	  git config filter.nbstripout.clean '"$(abspath $(BIN))/python" -m nbstripout --keep-id' && \
	  git config filter.nbstripout.smudge cat && \
	  git config diff.ipynb.textconv '"$(abspath $(BIN))/python" -m nbstripout --keep-id -t'; fi

# The offline MobileNetV2 weights into the Keras cache (checked on every run, copied once).
offline-weights:
	@if [ -n "$$KERAS_HOME" ] && [ -f "$(SHARED)/models/keras/$(MOBILENET)" ] \
	  && [ ! -f "$$KERAS_HOME/models/$(MOBILENET)" ]; then \
	  mkdir -p "$$KERAS_HOME/models" && cp "$(SHARED)/models/keras/$(MOBILENET)" "$$KERAS_HOME/models/"; fi

run: $(STAMP) offline-weights  ## run every notebook headless into outputs/ (PROFILE=quick|cpu|full)
	@$(BIN)/python -m emolib run --profile $(PROFILE)

test: $(STAMP)  ## the test suite (data tests skip when FER-2013 is not found)
	$(BIN)/python -m pytest

# Everything but the notebook, browser, training and real-data tests (markers in pyproject.toml).
test-fast: $(STAMP)  ## the unit tests only, under a minute
	$(BIN)/python -m pytest -q -m "not slow and not browser and not data and not notebook"

lint: $(STAMP)  ## ruff on the package and the tests (rules in pyproject.toml)
	$(BIN)/ruff check emolib tests

lab: $(STAMP) offline-weights  ## JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks

tensorboard: $(STAMP)  ## TensorBoard on every run's logs under outputs/ (http://localhost:6006)
	$(BIN)/tensorboard --logdir "$${EMOLIB_OUTPUTS:-outputs}"

strip:  ## remove outputs from the committed notebooks
	$(BIN)/nbstripout --keep-id notebooks/*.ipynb

clean-cache:
	rm -rf outputs/cache
