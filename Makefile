# The two commands of the quick start: `make demo` and `make test`.
# Each creates .venv and installs unitscope into it when that is missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UNITSCOPE_HOME ?= $(CURDIR)/.unitscope

.PHONY: setup demo published test test-fast bench clean chromium

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	UNITSCOPE_HOME=$(UNITSCOPE_HOME) $(BIN)/unitscope demo --out $(UNITSCOPE_HOME)/demo

# The paper's own data (README: "The paper's own data"): the published per-unit results imported, then the report.
PUBLISHED ?= ../shared/published
PUBLISHED_OUT ?= $(UNITSCOPE_HOME)/published
published: $(STAMP)
	$(BIN)/unitscope import iclr15 $(PUBLISHED)/iclr15_unit_annotations/unitAnnotation_places205-alexnet.mat --network alexnet-places205 --out $(PUBLISHED_OUT)
	$(BIN)/unitscope import iclr15 $(PUBLISHED)/iclr15_unit_annotations/unitAnnotation_imagenet-alexnet.mat --network alexnet-imagenet --out $(PUBLISHED_OUT)
	for net in places205 places365 imagenet; do \
	  $(BIN)/unitscope import netdissect $(PUBLISHED)/netdissect_release/caffe_reference_$$net.csv --network alexnet-$$net --layer conv5 --out $(PUBLISHED_OUT) || exit 1; done
	for net in places365 imagenet; do \
	  $(BIN)/unitscope import netdissect $(PUBLISHED)/netdissect_release/ResNet-152-model_$$net.csv --network resnet152-$$net --layer layer4 --out $(PUBLISHED_OUT) || exit 1; done
	$(BIN)/unitscope report $(PUBLISHED_OUT)

# Browser tests drive Debian's Chromium through Playwright (never a downloaded browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "could not install chromium: browser tests will be skipped"; }

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(UNITSCOPE_HOME) build dist src/*.egg-info
