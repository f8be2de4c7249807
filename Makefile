# Two commands: `make reproduce` and `make test` (each creates .venv on first use).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PRESET ?= tiny

.PHONY: reproduce test book lint notebooks clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,book]'
	# tinysoundfont's pyaudio dependency has no wheel and is not needed for offline rendering
	$(BIN)/pip install -q --disable-pip-version-check --no-deps tinysoundfont==0.3.7
	touch $(STAMP)

reproduce: $(STAMP)
	$(BIN)/wsas reproduce --preset $(PRESET)

test: $(STAMP)
	$(BIN)/ruff check wsas tests
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

book: $(STAMP)
	$(BIN)/jupyter-book clean . --all
	$(BIN)/jupyter-book build . -W -n --keep-going

lint: $(STAMP)
	$(BIN)/ruff check wsas tests
	$(BIN)/lint-imports

clean-venv:
	rm -rf $(VENV)

notebooks: $(STAMP)
	$(BIN)/jupytext --to ipynb --update notebooks/[0-9][0-9]_*.py
