# Two commands do all the set-up on a fresh machine:
#   make lab    create .venv, install the package and its runtime dependencies, prepare
#               CIFAR-10, open JupyterLab on lectures/
#   make test   the same set-up plus the test tools (the `test` extra), then the unit tests, the
#               notebook regression tests and the lectures run in JupyterLab in a headless
#               browser (tests_browser/)
# Choices, on the command line (README, "Two commands" and "Installing without a GPU"):
#   TORCH=cpu                    torch and torchvision from PyTorch's CPU wheel index (no CUDA)
#   PYTHON_BOOTSTRAP=python3.11  the Python that creates .venv: 3.11 or newer
#   VENV=$CONDA_PREFIX            install into an active conda environment instead of a new .venv
# The lectures load the class-profile checkpoints shipped in checkpoints/class/ (see its README).
# CIFAR-10 comes from $SSLTEACH_CIFAR10_SOURCE when set (a local archive or folder), else it
# is downloaded from the official site. Prepared data goes to $SSLTEACH_DATA (default data/).

PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
# TORCH=cpu: PyPI's Linux torch is the CUDA build (with nvidia-* and triton); PyTorch's CPU index
# has the same versions without them. The pins of pyproject.toml (tests/test_setup.py checks).
TORCH_CPU_INDEX := https://download.pytorch.org/whl/cpu
TORCH_CPU_PINS := torch==2.14.1 torchvision==0.29.1
ifneq ($(filter-out cpu,$(TORCH)),)
$(error TORCH=$(TORCH): the only choice is TORCH=cpu; leave TORCH unset for the default build)
endif
ifneq ($(and $(filter cpu,$(TORCH)),$(wildcard $(VENV)/conda-meta)),)
$(error TORCH=cpu installs with pip; $(VENV) is a conda environment: make it from environment-cpu.yml instead (README, "Installing without a GPU"))
endif
LAB_IP ?= 127.0.0.1
LAB_PORT ?= 8888
# JupyterLab refuses to run as root unless told; containers and cloud VMs often are root.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--ServerApp.allow_root=True)

.PHONY: setup data lab test unit notebooks bench student guide browser-test checkpoints seeds ladder clean-venv python-version

# The pins need Python 3.11 (numpy 2.4.6, scikit-learn 1.9.1, ...; the tests use tomllib). Checked
# before anything is installed: the environment's own Python if it exists, else the bootstrap one.
CHECKED_PYTHON = $(if $(wildcard $(PYTHON)),$(PYTHON),$(PYTHON_BOOTSTRAP))
python-version:
	@$(CHECKED_PYTHON) -c 'import sys; v = sys.version_info; sys.exit(0 if v >= (3, 11) else "*** $(CHECKED_PYTHON) is Python %d.%d.%d" % v[:3])' || { \
	  echo "*** sslteach needs Python 3.11 or newer, and $(CHECKED_PYTHON) is older (above) or missing."; \
	  echo "*** $(if $(wildcard $(PYTHON)),Remove $(VENV) with make clean-venv and point,Point) make at a newer Python: make lab PYTHON_BOOTSTRAP=python3.11 (a command or a full path)."; \
	  echo "*** See README, \"Two commands\"."; exit 1; }

# The package and its runtime dependencies only: what the lectures need. Reinstalled whenever
# pyproject.toml changes. With TORCH=cpu, torch and torchvision come first from the CPU index;
# `pip install -e .` then finds its torch pins satisfied. An existing environment (VENV=...) is
# used as it is: no venv is created and its pip is left alone.
$(VENV)/.installed: pyproject.toml | python-version
	$(if $(wildcard $(PYTHON)),,$(PYTHON_BOOTSTRAP) -m venv $(VENV) || { echo "*** $(PYTHON_BOOTSTRAP) -m venv failed. On Debian and Ubuntu: sudo apt install python3-venv (python3.11-venv for python3.11), then make clean-venv and run make again."; exit 1; })
	$(if $(wildcard $(PYTHON)),,$(PYTHON) -m pip install --quiet --upgrade pip)
	$(if $(filter cpu,$(TORCH)),$(PYTHON) -m pip install --quiet --index-url $(TORCH_CPU_INDEX) $(TORCH_CPU_PINS))
	$(PYTHON) -m pip install --quiet -e .
	touch $@

# The test tools (the `test` extra: pytest, nbval, Playwright, ...), for the test targets only.
$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PYTHON) -m pip install --quiet -e '.[test]'
	touch $@

setup: $(VENV)/.installed

data: setup
	$(PYTHON) data_scripts/get_cifar10.py

# Beyond localhost anyone who learns the token gets this machine's user (root in a container):
# no terminals then, and a warning that the connection, token included, is plain HTTP.
LAB_LOCAL := $(filter 127.0.0.1 localhost ::1,$(LAB_IP))
LAB_REMOTE := $(if $(LAB_LOCAL),,--ServerApp.terminals_enabled=False)

lab: setup
	@$(PYTHON) data_scripts/get_cifar10.py || echo "*** CIFAR-10 is not prepared; the lectures fall back to the offline photographs (see README: 'When something fails')."
	@$(if $(LAB_LOCAL),true,echo "*** warning: serving on $(LAB_IP) over plain HTTP: the token and notebooks cross the network unencrypted, and notebooks run as $$(id -un). Terminals are off. Safer: a non-root student user, HTTPS, or an SSH tunnel (see README: make lab).")
	$(VENV)/bin/jupyter lab --notebook-dir=lectures --ServerApp.ip=$(LAB_IP) --ServerApp.port=$(LAB_PORT) $(LAB_ROOT) $(LAB_REMOTE)

unit: $(VENV)/.installed-test data
	$(PYTHON) -m pytest tests

notebooks: $(VENV)/.installed-test data
	$(PYTHON) -m pytest --nbval-lax --nbval-current-env lectures

# Each lecture in JupyterLab in headless Chromium (tests_browser/README.md), every one through
# Run All Cells; like nbval, it loads the shipped class-profile checkpoints rather than training.
browser-test: $(VENV)/.installed-test data
	SSLTEACH_BROWSER_RUN_ALL=all $(PYTHON) -m pytest tests_browser -v -s

# Each lecture is executed top to bottom once, by nbval; the student-copy test and the browser
# test run only the cells their checks need, and Run All Cells in the browser for the lecture
# changed last (tests_browser/README.md). Budget: a clean-clone .ci/run within 45 minutes on a
# 2-core CPU (README, "Test time").
test: $(VENV)/.installed-test data
	$(PYTHON) -m pytest tests lectures --nbval-lax --nbval-current-env --durations=20
	$(PYTHON) -m pytest tests_browser

bench: data
	$(PYTHON) benchmarks/bench_core.py

# For instructors: pretrain every method of the course (python -m sslteach.train all) into
# data/checkpoints/$(PROFILE)/ with a SHA256SUMS file; methods already there are skipped.
# Then the closing lecture's table of every method (python -m sslteach.transfer), stored beside
# them as course_table.json; rows already measured on the same weights are skipped.
# On a GPU: make checkpoints (the full profile); `make checkpoints PROFILE=class` on a CPU.
PROFILE ?= full
checkpoints: data
	$(PYTHON) -m sslteach.train all --profile $(PROFILE)
	$(PYTHON) -m sslteach.transfer --profile $(PROFILE)
	$(PYTHON) -m sslteach.headline --profile $(PROFILE)

# The headline table's seed spread (lecture 08): the syllabus's methods and both baselines
# pretrained with seeds 1 and 2 (checkpoints already there are kept), then every seed's row.
SEEDS ?= 1 2
SEED_METHODS ?= random-init supervised colorization inpainting split-brain context jigsaw rotation deepcluster npid moco pirl simclr swav
seeds: data
	for seed in $(SEEDS); do for method in $(SEED_METHODS); do \
	  test -f data/checkpoints/$(PROFILE)/$$method-seed$$seed.pt || \
	  $(PYTHON) -m sslteach.train $$method --profile $(PROFILE) --seed $$seed || exit 1; done; done
	$(PYTHON) -m sslteach.headline $(SEED_METHODS) --profile $(PROFILE) --seeds 0 $(SEEDS)

# The compute ladder (lecture 08): each method's recipe for 3x and 10x the profile's steps
# (MULTIPLES="3 10 30 100" on a GPU), rungs already stored are skipped.
MULTIPLES ?= 3 10
ladder: data
	$(PYTHON) -m sslteach.ladder all --profile $(PROFILE) --multiples $(MULTIPLES)

student: setup
	$(PYTHON) tools/make_student.py

# instructor/GUIDE.md: every question of the lectures with its model answer (the cells tagged
# `instructor`, which `make student` leaves out). Rerun after changing a question or an answer.
guide: setup
	$(PYTHON) tools/make_guide.py

# Only a virtual environment (it has pyvenv.cfg), never a conda environment given as VENV.
clean-venv:
	@if [ -e $(VENV) ] && [ ! -f $(VENV)/pyvenv.cfg ]; then echo "*** $(VENV) is not a virtual environment (no pyvenv.cfg): not removing it. A conda environment: conda env remove -p $(VENV)"; exit 1; fi
	rm -rf $(VENV)
