# The course's two commands: `make course` runs every notebook on the built-in data,
# `make test` runs the test suite (ruff, then pytest). Both create .venv on first use.
# `make test-fast` is the inner loop: ruff and the tests not marked slow (no training, no notebook runs).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Extra arguments for the course runner, e.g. make course ARGS="-p EPOCHS 2 -p DATA_DIR /data/tgs"
ARGS ?=
# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k rle"
PYTEST_ARGS ?=
# Test processes (pytest-xdist). Much of the suite waits on notebook kernels and child processes, so two
# share two cores well; each holds its own TensorFlow (about 1 GiB), hence no more by default. --dist loadfile
# keeps a file's tests in one process, so a fixture they share (one notebook run, one distributed training)
# is made once.
TEST_WORKERS ?= 2

.PHONY: course test test-fast lint stress book data bench bench-full bench-throughput bench-layers lab clean

$(STAMP): pyproject.toml helpers/tensorflow_env.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else "Python 3.11 or newer is needed, found " + sys.version)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -m helpers.tensorflow_env --install-kernel > /dev/null  # Jupyter's kernel, with TensorFlow's settings
	touch $(STAMP)

course: $(STAMP)
	$(BIN)/python -m helpers.course $(ARGS)

# ruff checks the code and the notebooks (pyproject.toml's [tool.ruff]).
lint: $(STAMP)
	$(BIN)/ruff check .

# The slowest tests are listed at the end of each run.
test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

test-fast: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not slow" --durations=10 $(PYTEST_ARGS)

# The executed course (make course's build/notebooks) as a static site: build/book/index.html. Executes nothing.
BOOK_STAMP := $(VENV)/.book-installed
$(BOOK_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[book]"
	touch $(BOOK_STAMP)

book: $(BOOK_STAMP)
	$(BIN)/python book/build_book.py --notebooks build/notebooks --out build/book

# The real competition data from Kaggle (needs your Kaggle API token and the competition's rules accepted),
# unpacked and checked into DATA_DEST; make data DATA_ARGS="--from-zip FILE" for a zip downloaded by hand.
DATA_DEST ?= data/tgs-salt
DATA_ARGS ?=
data: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[data]"
	$(BIN)/python -m helpers.download download $(DATA_DEST) $(DATA_ARGS)

# Notebooks run again and again under CPU load, to catch kernel deaths (issue 18): make stress ARGS="--runs 30"
stress: $(STAMP)
	$(BIN)/python -m benchmarks.stress_notebooks $(ARGS)

bench: $(STAMP)
	$(BIN)/python -m benchmarks.train_bench --quick $(ARGS)

bench-full: $(STAMP)
	$(BIN)/python -m benchmarks.train_bench $(ARGS)

# What limits training speed: one change at a time (XLA, bfloat16, batch, size, threads, oneDNN, input pipeline)
bench-throughput: $(STAMP)
	$(BIN)/python -m benchmarks.throughput $(ARGS)

# Where a training step's time goes: every layer of the U-Net timed alone, grouped by kind
bench-layers: $(STAMP)
	$(BIN)/python -m benchmarks.layer_profile $(ARGS)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

clean:
	rm -rf build .pytest_cache
