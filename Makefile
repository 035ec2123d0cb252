# Every setup step lives here so a fresh clone needs only `make run` / `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test venv clean docs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0  # CPU build, before the extras (see pyproject.toml)
	$(BIN)/python -m pip install --quiet -e ".[test,dask,consumers,torch]"  # torch: already the pinned CPU build
	touch $(STAMP)

venv: $(STAMP)

## run: set up .venv and run the digits strategy end to end (output in data/out/digits)
run: $(STAMP)
	$(BIN)/augcli run configs/digits.yaml --overwrite

## test: set up .venv and run the test suite
test: $(STAMP)
	$(BIN)/ruff check augcli tests benchmarks data
	$(BIN)/python -m pytest

## docs: regenerate the reference pages in docs/ from the code
docs: $(STAMP)
	$(BIN)/python -m augcli.cli.docgen

clean:
	rm -rf $(VENV) data/out .pytest_cache
