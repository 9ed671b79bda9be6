# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch/torchvision pinned to the builds this project is tested with (CPU or CUDA wheels both work).
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
PYTEST_ARGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser demo test test-fast lint docs docs-gen bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed

# the report tests render report.html in Debian's chromium (Playwright drives it; it never downloads a browser)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

demo: setup
	$(VENV)/bin/vislab demo

# lint, the docs site (strict, with the generated reference pages checked), then every test
test: setup browser lint docs
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not slow and not realdata" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks

# regenerate docs/reference/ (CLI and config references) from the code
docs-gen: setup
	$(PY) -m vislab.docgen

docs: setup
	$(PY) -m vislab.docgen --check
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet -d build/site

# the tagging and service benchmarks need a trained fashion model: BENCH_CKPT (train one with
# `vislab fashion train -c fashion/default`, or `make demo` and BENCH_CKPT=runs/demo)
BENCH_CKPT ?= runs/fashion

bench: setup
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_train_predict.py
	$(PY) benchmarks/cifar_speed.py
	$(PY) benchmarks/bench_cli.py
	@test -e $(BENCH_CKPT) || { echo "bench: no fashion model at BENCH_CKPT=$(BENCH_CKPT)"; exit 1; }
	$(PY) benchmarks/bench_tag.py --checkpoint $(BENCH_CKPT)
	$(PY) benchmarks/bench_serve.py --checkpoint $(BENCH_CKPT)

clean:
	rm -rf runs .pytest_cache build/site
