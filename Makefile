# pixelgen developer commands. `make demo` and `make test` work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install native test test-fast demo bench lint format clean
LINTED := src tests benchmarks scripts

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install_torch.sh
	test -x $(PY) || python3 -m venv $(VENV)
	scripts/install_torch.sh $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Build (or check) the native recurrence scans now rather than at the first training step.
native: install
	$(PY) -c "from pixelgen.nn import native; print(native.load() is not None and native.cache_dir())"

test: install
	$(PY) -m pytest

# The quick loop: everything but the multi-process, kill and compile tests (marked slow).
test-fast: install
	$(PY) -m pytest -m "not slow"

demo: install
	$(PY) scripts/demo.py

bench: install
	$(PY) benchmarks/run.py

lint: install
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/ruff format --check $(LINTED)

format: install
	$(VENV)/bin/ruff format $(LINTED)
	$(VENV)/bin/ruff check --fix $(LINTED)

clean:
	rm -rf $(VENV) runs demo_out .pytest_cache
