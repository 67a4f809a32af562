# pixelgen developer commands. `make demo` and `make test` work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test demo bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install_torch.sh
	test -x $(PY) || python3 -m venv $(VENV)
	scripts/install_torch.sh $(PY)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

test: install
	$(PY) -m pytest

demo: install
	$(PY) scripts/demo.py

bench: install
	$(PY) benchmarks/run.py

lint: install
	$(VENV)/bin/ruff check src tests benchmarks scripts

clean:
	rm -rf $(VENV) runs demo_out .pytest_cache
