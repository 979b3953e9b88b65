# Two commands on a fresh machine: `make run` (dashboard) and `make test` (test suite).
# Both create .venv and install everything on first use; later calls reuse it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
TORCH  ?= torch==2.13.0
HOST   ?= 127.0.0.1
PORT   ?= 8501
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.semsafe-installed

.PHONY: run test bench install clean-venv

install: $(STAMP)

$(STAMP): pyproject.toml requirements-packs.txt Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/pip install --quiet --no-deps -r requirements-packs.txt
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/semsafe model
	$(BIN)/streamlit run app.py --server.address $(HOST) --server.port $(PORT)

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/emd.py

clean-venv:
	rm -rf $(VENV)
