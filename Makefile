# Two commands: `make reproduce` and `make test` (each creates .venv on first use).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PRESET ?= tiny

.PHONY: reproduce test book lint notebooks clean-venv gpu-check

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,book]'
	# tinysoundfont's pyaudio dependency has no wheel and is not needed for offline rendering
	$(BIN)/pip install -q --disable-pip-version-check --no-deps tinysoundfont==0.3.7
	# LAION-CLAP's architecture offline (wsas.clap.laion_build): laion-clap pins numpy<2 and
	# torchlibrosa pulls librosa/numba; its model code runs on numpy 2 without them (~3 MB)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps laion-clap==1.1.7 torchlibrosa==0.1.0
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

# one GPU, under 8 minutes: paper-size steps of every regime, 3 minutes of tiny (results/gpu)
gpu-check: $(STAMP)
	$(BIN)/python -m wsas.lab.gpu --device cuda --out results/gpu

clean-venv:
	rm -rf $(VENV)

notebooks: $(STAMP)
	$(BIN)/jupytext --to ipynb --update notebooks/[0-9][0-9]_*.py
