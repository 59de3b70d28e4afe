# Everything runs in virtual environments made here, so a fresh machine needs only
# python3 (with venv and pip).  `make test` is what CI and the README use.
#
# .venv holds only what the target at hand needs: `make demo` the package and its runtime
# dependencies, `make test` adds the test extra, `make lint`/`typecheck`/`check` the dev
# extra.  All of these install from wheels, without a compiler.  EXTRAS adds optional
# extras, e.g. `make test EXTRAS=yolo`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install -q --disable-pip-version-check
TF_VENV := .venv-tf
BEAM_VENV := .venv-beam
TORCH_VENV := .venv-torch
# The PyTorch of `make test-torch`: the CPU build that CI's machines hold on disk (a plain
# `pip install torch` may pull a CUDA build of several GB). Users: any release from 2.0.
TORCH_VERSION ?= 2.13.0
PROTOBUF_OLDEST := 4.25.*
PYTEST_FLAGS ?= -q
EXTRAS ?=

empty :=
space := $(empty) $(empty)
comma := ,
# The extras $(1) plus EXTRAS, comma-separated ("test yolo" and "test,yolo" alike).
extras = $(subst $(space),$(comma),$(strip $(1) $(subst $(comma),$(space),$(EXTRAS))))
# One stamp per set of extras; a larger set also stamps the smaller ones it contains.
RUNTIME_ENV := $(VENV)/.installed-$(or $(call extras),runtime)
TEST_ENV := $(VENV)/.installed-$(call extras,test)
DEV_ENV := $(VENV)/.installed-$(call extras,dev)
# Make the venv if there is none and install the package (editable) with the extras $(1).
define install
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -e '.$(if $(1),[$(1)])'
endef

.PHONY: help venv test test-quick check lint typecheck demo proto test-tf test-beam test-protobuf \
	test-torch bench bench-beam soak fuzz measure-setup platforms install-size clean

help:
	@echo "make demo           install (runtime only), write the demo dataset to demo-out/, check it"
	@echo "make test           install the test extra too and run the test suite"
	@echo "make test-quick     the test suite without the tests that start processes (marked slow)"
	@echo "make check          ruff + import layers (lint-imports) + mypy + tests"
	@echo "  EXTRAS=fast-png   ...with optional extras too (comma-separated)"
	@echo "make test-tf        TensorFlow interoperability tests (own venv, ~1.3 GB)"
	@echo "make test-beam      Apache Beam pipeline tests (own venv with Beam and TensorFlow)"
	@echo "make test-torch     PyTorch dataset tests, DataLoader workers and torchrun (own venv)"
	@echo "make test-protobuf  proto tests under the oldest and newest protobuf runtimes"
	@echo "make proto          regenerate tfrecord_lite/proto from proto/ (needs protoc 3.21)"
	@echo "make bench          benchmarks against TensorFlow (uses the test-tf and test-torch venvs)"
	@echo "make soak           100,000 records through create(); peak memory of streamed input, per item"
	@echo "make bench-beam     the Beam DirectRunner against create() (uses the test-beam venv)"
	@echo "make fuzz           100,000 random and mutated inputs to the reader and decoder,"
	@echo "                    100,000 opens under --root racing a folder swapped for a link,"
	@echo "                    and 2,000 mutated annotation files to each converter"
	@echo "make measure-setup  time make demo and make test in a fresh clone (cold cache, no compiler)"
	@echo "make platforms      check with pip's resolver that the dependencies are wheels everywhere"
	@echo "make install-size   size of a fresh venv with pip install ., and with [fast-png]"

$(RUNTIME_ENV): pyproject.toml
	$(call install,$(call extras))
	touch $@

$(TEST_ENV): pyproject.toml
	$(call install,$(call extras,test))
	touch $@ $(RUNTIME_ENV)

$(DEV_ENV): pyproject.toml
	$(call install,$(call extras,dev))
	touch $@ $(TEST_ENV) $(RUNTIME_ENV)

venv: $(DEV_ENV)

test: $(TEST_ENV)
	$(PY) -m pytest $(PYTEST_FLAGS) -m "not tensorflow and not beam and not torch"

test-quick: $(TEST_ENV)
	$(PY) -m pytest $(PYTEST_FLAGS) -m "not slow and not tensorflow and not beam and not torch"

lint: $(DEV_ENV)
	$(PY) -m ruff check tfrecord_lite tests benchmarks proto
	$(VENV)/bin/lint-imports --no-cache

typecheck: $(DEV_ENV)
	$(PY) -m mypy

check: lint typecheck test

demo: $(RUNTIME_ENV)
	rm -rf demo-out
	$(PY) -m tfrecord_lite --dataset_path tests/data/demo/dataset.json --prefix train \
	    --output_dir demo-out --shards 2 --threads 2 --shuffle --seed 7 --store_images
	$(PY) tests/data/demo/check.py tests/data/demo/dataset.json demo-out train

proto:
	$(PY) proto/generate.py

fuzz: $(TEST_ENV)
	FUZZ_EXAMPLES=100000 $(PY) -m pytest -q tests/test_fuzz.py \
	    tests/test_confined.py::test_a_folder_swapped_back_and_forth_never_leads_out
	FUZZ_CONVERTERS=2000 $(PY) -m pytest -q tests/test_converter_fuzz.py
	$(PIP) -e '.[test,fast-png]'
	CACHE_FLIPS=120 $(PY) -m pytest -q tests/test_png_cache.py

# The default dependencies resolve as binary wheels (crcmod aside) on manylinux x86_64 and
# aarch64, macOS arm64 and Windows: pip's own resolver, nothing installed. CI runs it.
platforms:
	$(PYTHON) .ci/platforms.py

install-size:
	benchmarks/install_size.sh

$(TF_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install -q --disable-pip-version-check tensorflow-cpu
	$(TF_VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[test,fast-png]'
	touch $@

test-tf: $(TF_VENV)/.installed
	$(TF_VENV)/bin/python -c "import tensorflow as tf; print('TensorFlow', tf.__version__)"
	$(TF_VENV)/bin/python -m pytest $(PYTEST_FLAGS) -m tensorflow tests

# Beam and TensorFlow resolve together (protobuf 6.x), so the Beam tests check in
# process that TensorFlow reads what the pipeline writes.
$(BEAM_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(BEAM_VENV)
	$(BEAM_VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[beam,test]' tensorflow-cpu
	touch $@

test-beam: $(BEAM_VENV)/.installed
	$(BEAM_VENV)/bin/python -c "import apache_beam as b, tensorflow as t; print('Apache Beam', b.__version__, '/ TensorFlow', t.__version__)"
	$(BEAM_VENV)/bin/python -m pytest $(PYTEST_FLAGS) -m beam tests

# tfrecord is the PyPI package that `make bench` reads the same shards with.
$(TORCH_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/python -m pip install -q --disable-pip-version-check 'torch==$(TORCH_VERSION)'
	$(TORCH_VENV)/bin/python -m pip install -q --disable-pip-version-check -e '.[torch,test]' tfrecord
	touch $@

test-torch: $(TORCH_VENV)/.installed
	$(TORCH_VENV)/bin/python -c "import torch; print('PyTorch', torch.__version__)"
	$(TORCH_VENV)/bin/python -m pytest $(PYTEST_FLAGS) -m torch tests

test-protobuf:
	$(PYTHON) -m venv .venv-pb-oldest
	.venv-pb-oldest/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 'protobuf==$(PROTOBUF_OLDEST)'
	.venv-pb-oldest/bin/python -c "import google.protobuf as p; print('protobuf', p.__version__)"
	.venv-pb-oldest/bin/python -m pytest $(PYTEST_FLAGS) tests/test_proto.py tests/test_example.py
	$(PYTHON) -m venv .venv-pb-newest
	.venv-pb-newest/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' --upgrade protobuf
	.venv-pb-newest/bin/python -c "import google.protobuf as p; print('protobuf', p.__version__)"
	.venv-pb-newest/bin/python -m pytest $(PYTEST_FLAGS) tests/test_proto.py tests/test_example.py

bench-beam: $(BEAM_VENV)/.installed
	$(BEAM_VENV)/bin/python benchmarks/bench_beam.py

bench: $(RUNTIME_ENV) $(TF_VENV)/.installed $(TORCH_VENV)/.installed
	$(TF_VENV)/bin/python benchmarks/bench_write.py
	$(TF_VENV)/bin/python benchmarks/bench_create.py
	$(TF_VENV)/bin/python benchmarks/bench_read.py
	$(TORCH_VENV)/bin/python benchmarks/bench_torch.py --tf-python $(TF_VENV)/bin/python
	$(PY) benchmarks/bench_soak.py
	$(PY) benchmarks/bench_masks.py rate job-memory

soak: $(RUNTIME_ENV)
	$(PY) benchmarks/bench_soak.py

# Of the committed HEAD; RUNS=2 measures twice.
measure-setup:
	benchmarks/setup_time.sh $(RUNS)

clean:
	rm -rf $(VENV) $(TF_VENV) $(BEAM_VENV) $(TORCH_VENV) .venv-pb-* demo-out bench-out *.egg-info
