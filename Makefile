# Transformers in practice: the teacher/student architecture — build and test the course.
#   make course        set up, fetch data, run every notebook (fast mode) into build/notebooks/
#   make course FULL=1 the same at full size (meant for a GPU machine)
#   make test          set up, fetch data, unit tests + nbval over every notebook (fast mode)
#   make lab           JupyterLab with the course installed
#   make slides        the lecture deck as an offline reveal.js site in build/slides/
#   make teachers      retrain the reference teachers the course ships (course_lib/artefacts/; CPU, ~40 min)
#   make gpu-check     every benchmark on a CUDA GPU in one short run (results/*_gpu.json); uses the
#                      machine's own python3 (GPU_PYTHON) and data cache, installs nothing
#   make clean         remove build/ (distclean also removes .venv)

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
MODE := $(if $(FULL),full,fast)
TORCH_PIN := torch==2.13.0
TEST_WORKERS ?= 2

export PATH := $(abspath $(BIN)):$(PATH)
export PYTHONUNBUFFERED := 1

.PHONY: course test unit nbval lab slides data install clean distclean gpu-check teachers

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	# jupyterlab-rise pulls in jupyterlab-mathjax3 4.3, built for JupyterLab 3 and refused by 4.x in the
	# browser console; JupyterLab 4 renders maths itself, so the stale extension is switched off.
	$(BIN)/jupyter labextension disable --level=sys_prefix @jupyterlab/mathjax3-extension
	touch $@

install: $(INSTALLED)

data: $(INSTALLED)
	$(BIN)/python -m course_lib.data

course: data
	COURSE_MODE=$(MODE) $(BIN)/python -m course_lib.course.runner --mode $(MODE) --out build

unit: data
	COURSE_MODE=fast COURSE_RESULTS_DIR=$(CURDIR)/build/test-results $(BIN)/python -m pytest tests -q

nbval: data
	COURSE_MODE=fast COURSE_PROGRESS=0 COURSE_RESULTS_DIR=$(CURDIR)/build/test-results $(BIN)/python -m pytest -q -p no:cacheprovider \
		--nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg notebooks

# Two pytest workers with one thread each get more out of two cores than one worker with two
# threads; each notebook or test module stays on one worker (--dist loadfile), handed out in
# TEST_ORDER: chapters 07 and 06 first (chapter 08 loads the models they train), then the longest
# chapters, the other chapters in course order, then the unit tests. The widgets driven in
# JupyterLab run afterwards on their own: a browser sharing its core with training is too slow
# for the front end's own time limits.
FIRST_NOTEBOOKS := notebooks/07_ner_teacher_student.ipynb notebooks/06_mnist_teacher_student.ipynb \
	notebooks/09_applications.ipynb notebooks/04_transformer_block_and_training.ipynb
TEST_ORDER := $(FIRST_NOTEBOOKS) $(filter-out $(FIRST_NOTEBOOKS),$(sort $(wildcard notebooks/*.ipynb))) tests
BROWSER_TESTS := tests/views/test_widgets_in_jupyterlab.py
TEST_ENV := OMP_NUM_THREADS=1 COURSE_MODE=fast COURSE_PROGRESS=0 COURSE_RESULTS_DIR=$(CURDIR)/build/test-results
test: data
	$(TEST_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		--durations=10 $(TEST_ORDER) --ignore=$(BROWSER_TESTS) --nbval --nbval-current-env --nbval-sanitize-with nbval_sanitize.cfg
	$(TEST_ENV) $(BIN)/python -m pytest -q -p no:cacheprovider $(BROWSER_TESTS)

lab: data
	$(BIN)/jupyter lab notebooks

slides: data
	$(BIN)/python -m course_lib.course.slides --out build/slides

teachers: data
	$(BIN)/python -m course_lib.cases.teachers

GPU_PYTHON ?= python3
gpu-check:
	PYTHONPATH=$(CURDIR) $(GPU_PYTHON) benchmarks/gpu_check.py

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV) course_lib.egg-info
