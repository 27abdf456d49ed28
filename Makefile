# parity: `make parity` runs the default suite, `make test` runs the tests.
# Both create .venv and install the pinned dependencies first (once; reused after).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.parity-installed
# The machine's local wheel of torch 2.13.0 (CPU build) lives here; pip also reads PIP_FIND_LINKS.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)
PARITY_ARGS ?=
PYTEST_ARGS ?=
OP ?= lrn
FUZZ_ARGS ?= --max-examples 200

# A second, older tensorflow in its own environment: the tests run it beside the pinned one
# (`--python tensorflow:tf220=...`) to check that a declaration's when: is judged per side.
VENV_TF220 ?= .venv-tf220
STAMP_TF220 := $(VENV_TF220)/.parity-installed

.PHONY: install second-env parity test bench isa-caps fuzz browser report-screenshot validate constraints clean distclean

# One environment for every framework: onnxruntime 1.32.0 (+ onnx 1.23.2) and jax/jaxlib 0.10.2
# (+ flax 0.12.8) install beside torch, tensorflow-cpu and mindspore without changing any pin
# (DEVELOPERS.md), so `.[all]` brings all five and no second environment is needed for them.
install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check $(FIND_LINKS) -c constraints.txt -e '.[all,dev]'
	@touch $@

second-env: $(STAMP_TF220)

$(STAMP_TF220): constraints-tf220.txt
	@test -x $(VENV_TF220)/bin/python || $(PYTHON) -m venv $(VENV_TF220)
	$(VENV_TF220)/bin/python -m pip install --disable-pip-version-check -c constraints-tf220.txt tensorflow-cpu==2.20.0
	@touch $@

parity: install
	$(BIN)/parity run cases/ $(PARITY_ARGS)

test: install second-env browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Debian's chromium + chromedriver for the report's browser tests and screenshot. Installed
# with apt-get where that is possible (root, Debian); elsewhere the browser tests skip
# (except in CI, where CI=true makes a missing browser a failure).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else echo "note: no chromium/chromedriver and no root apt-get: the browser tests will skip"; fi

report-screenshot: install browser
	$(BIN)/parity run cases/ -q --report-dir reports || [ $$? = 1 ]
	$(BIN)/python -m parity.report.browser screenshot reports/parity.html docs/report.png

bench: install
	$(BIN)/python bench/bench.py
	$(BIN)/python bench/scale.py

# what the runtime ISA caps change on this CPU, bit for bit (README, "Hosts")
isa-caps: install
	$(BIN)/python bench/isa_caps.py

# search one op for disagreements with hypothesis (make fuzz OP=layer_norm FUZZ_ARGS="--seed 1")
fuzz: install
	$(BIN)/parity fuzz $(OP) $(FUZZ_ARGS)

validate: install
	$(BIN)/parity validate cases/

constraints:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^parity' > constraints.txt.new
	{ head -n 2 constraints.txt; cat constraints.txt.new; } > constraints.txt.tmp && rm constraints.txt.new && mv constraints.txt.tmp constraints.txt

clean:
	rm -rf reports/*.html reports/*.csv reports/*.json reports/logs build *.egg-info .pytest_cache .hypothesis

distclean: clean
	rm -rf $(VENV) $(VENV_TF220)
