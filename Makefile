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

.PHONY: install offline-weights run test lab tensorboard strip clean-cache
install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-* && touch $@

# The offline MobileNetV2 weights into the Keras cache (checked on every run, copied once).
offline-weights:
	@if [ -n "$$KERAS_HOME" ] && [ -f "$(SHARED)/models/keras/$(MOBILENET)" ] \
	  && [ ! -f "$$KERAS_HOME/models/$(MOBILENET)" ]; then \
	  mkdir -p "$$KERAS_HOME/models" && cp "$(SHARED)/models/keras/$(MOBILENET)" "$$KERAS_HOME/models/"; fi

run: $(STAMP) offline-weights  ## run every notebook headless into outputs/ (PROFILE=quick|cpu|full)
	@$(BIN)/python -m emolib run --profile $(PROFILE)

test: $(STAMP)  ## the test suite (data tests skip when FER-2013 is not found)
	$(BIN)/python -m pytest

lab: $(STAMP) offline-weights  ## JupyterLab on the notebooks
	$(BIN)/jupyter lab notebooks

tensorboard: $(STAMP)  ## TensorBoard on every run's logs under outputs/ (http://localhost:6006)
	$(BIN)/tensorboard --logdir "$${EMOLIB_OUTPUTS:-outputs}"

strip:  ## remove outputs from the committed notebooks
	$(BIN)/nbstripout --keep-id notebooks/*.ipynb

clean-cache:
	rm -rf outputs/cache
