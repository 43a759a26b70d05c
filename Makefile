# Set-up and the two entry points of the README. Each target creates .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is installed first and pinned: resolving a bare torch requirement pulls a CUDA build.
TORCH_VERSION ?= 2.13.0

.PHONY: setup run test embedded embedded-mbv3 clean

$(BIN)/d2a: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade --quiet pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(BIN)/d2a

setup: $(BIN)/d2a

# The main job: search the shipped checkpoints for scikit-learn's digits (a held-out dataset).
run: setup
	$(BIN)/d2a search --dataset digits --top-k 5

test: setup
	$(BIN)/python -m pytest tests

# Rebuilds the embedded mini meta-database and checkpoints (docs/embedded.md); resumable.
embedded: setup
	scripts/build_embedded.sh --workdir embedded-build --jobs 2

# The same for the MobileNetV3 space (docs/mbv3.md): d2a/data/mini_mbv3.h5, d2a/checkpoints/mbv3/.
embedded-mbv3: setup
	scripts/build_embedded.sh --workdir embedded-build-mbv3 --scale mbv3 --jobs 2

clean:
	rm -rf $(VENV) build *.egg-info
