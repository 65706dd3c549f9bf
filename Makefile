# Two commands do all the set-up on a fresh machine:
#   make lab    create .venv, install, prepare CIFAR-10, open JupyterLab on lectures/
#   make test   the same set-up, then the unit tests, the notebook regression tests and the
#               lectures run in JupyterLab in a headless browser (tests_browser/)
# The lectures load the class-profile checkpoints shipped in checkpoints/class/ (see its README).
# CIFAR-10 comes from $SSLTEACH_CIFAR10_SOURCE when set (a local archive or folder), else it
# is downloaded from the official site. Prepared data goes to $SSLTEACH_DATA (default data/).

PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
PYTHON := $(VENV)/bin/python
LAB_IP ?= 127.0.0.1
LAB_PORT ?= 8888
# JupyterLab refuses to run as root unless told; containers and cloud VMs often are root.
LAB_ROOT := $(if $(filter 0,$(shell id -u)),--ServerApp.allow_root=True)

.PHONY: setup data lab test unit notebooks bench student browser-test checkpoints clean-venv

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PYTHON) || $(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
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

unit: data
	$(PYTHON) -m pytest tests

notebooks: data
	$(PYTHON) -m pytest --nbval-lax --nbval-current-env lectures

# Each lecture in JupyterLab in headless Chromium (tests_browser/README.md), every one through
# Run All Cells; like nbval, it loads the shipped class-profile checkpoints rather than training.
browser-test: data
	SSLTEACH_BROWSER_RUN_ALL=all $(PYTHON) -m pytest tests_browser -v -s

# Each lecture is executed top to bottom once, by nbval; the student-copy test and the browser
# test run only the cells their checks need, and Run All Cells in the browser for the lecture
# changed last (tests_browser/README.md). Budget: a clean-clone .ci/run within 45 minutes on a
# 2-core CPU (README, "Test time").
test: data
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

student: setup
	$(PYTHON) tools/make_student.py

clean-venv:
	rm -rf $(VENV)
