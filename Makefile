# magnum-spawner: everything a fresh machine needs is installed by these targets.
#
#   make test        unit + recorded-API tests, then the end-to-end suite on the
#                    local cloud (installs everything it needs; ~see README)
#   make lint        bash -n and shellcheck on every shell script (devstack/, the
#                    CI entry point, the test stubs); ruff on the Python
#   make unit        unit + recorded-API tests only (under a minute)
#   make integration the tests that start a real JupyterHub process or run pytest
#                    in a subprocess (no cloud; make test runs them too)
#   make e2e         end-to-end tests on the local clouds only (needs root)
#   make demo        local cloud + JupyterHub on http://127.0.0.1:8000
#                    (BACKEND=magnum: MagnumSpawner on a local Magnum cluster;
#                    HUB_CONFIG=path: your configuration file, loaded after the demo's)
#   make demo-down   stop the demo (the hub stops its servers first), then the cloud
#   make bench       the benchmarks in benchmarks/
#   make burst       the fault burst at a chosen size (BURST_SPAWNS=200, see README)
#   make docs        regenerate docs/configuration.md from the traits' help text

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
CACHE  := .cache
CHP    := $(CACHE)/node/node_modules/.bin/configurable-http-proxy
PYTEST_ARGS ?=
# every shell script in devstack/ and tests/devstack_stubs/ (by shebang), the CI
# entry point, and DevStack's sourced settings
SHELL_SCRIPTS = devstack/settings .ci/run $(shell grep -lsE '^\#!.*[/ ](ba)?sh$$' \
  devstack/* devstack/magnum/* tests/devstack_stubs/*)
# Under CI (CI=true) the unit tests run in a shuffled order; its seed is on the
# command line make prints (the same order again: make unit CI=true UNIT_SEED=N).
# No test may depend on what another left.
UNIT_SEED ?= $(shell od -An -N2 -tu2 /dev/urandom | tr -d ' ')
UNIT_ORDER ?= $(if $(filter-out 0 false no,$(CI)),--random-order-bucket=global \
  --random-order-seed=$(UNIT_SEED))
# make unit's pytest workers (pytest-xdist; each collects the whole suite, about
# 5-10 s of CPU). The tests mostly wait (timeouts, back-offs, a lagging loop), so
# a third worker on 2 cores still gains: 648 tests in 49-52 s, 58 s on two. The
# tests marked slow start first and an idle worker takes tests queued for
# another, so no 9 s test ends the run alone; UNIT_WORKERS=0 runs one process.
UNIT_WORKERS ?= 3
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: test lint unit integration e2e demo demo-down bench burst venv chp chromium docs clean

# The browser test's Chromium is Debian's (Playwright's own download needs the
# internet); pip's playwright package must not try to fetch one either.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $@

venv: $(VENV)/.installed

$(CHP):
	mkdir -p $(CACHE)/node
	npm install --silent --no-audit --no-fund --prefix $(CACHE)/node configurable-http-proxy@5

chp: $(CHP)

chromium:
	@command -v chromium >/dev/null || $(SUDO) apt-get install -y -q --no-install-recommends \
	  -o DPkg::Lock::Timeout=300 chromium || { $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 chromium; }

lint: venv
	@command -v shellcheck >/dev/null || $(SUDO) apt-get install -y -q \
	  -o DPkg::Lock::Timeout=300 shellcheck || { $(SUDO) apt-get update -q && \
	  $(SUDO) apt-get install -y -q -o DPkg::Lock::Timeout=300 shellcheck; }
	@for f in $(SHELL_SCRIPTS); do bash -n "$$f" || exit 1; done
	shellcheck -s bash $(SHELL_SCRIPTS)
	$(VENV)/bin/ruff check --no-cache .

unit: venv chp
	$(PY) -m pytest -q -n $(UNIT_WORKERS) --dist worksteal \
	  -m 'not localcloud and not integration' $(UNIT_ORDER) $(PYTEST_ARGS)

# a handful of tests, mostly CPU (a hub's start, pytest in a subprocess): one process
integration: venv chp
	$(PY) -m pytest -q -m integration $(UNIT_ORDER) $(PYTEST_ARGS)

# The Zun tests, the Magnum tests and upstream Zun's API tests (zun-tempest-plugin)
# side by side, each on its own local cloud in its own network namespace
# (tests/e2e/streams.py; E2E_STREAMS=zun runs one; a test file in PYTEST_ARGS runs
# only that).  The Magnum cloud's first install builds the Kubernetes binaries
# once, cached under .cache/kube.
E2E_STREAMS ?= zun,magnum,tempest
e2e: venv chp chromium
	PATH="$(CURDIR)/$(CACHE)/node/node_modules/.bin:$$PATH" \
	  $(PY) -m tests.e2e.streams --streams $(E2E_STREAMS) $(PYTEST_ARGS)

# The unit and integration tests run beside the end-to-end clouds' installs and
# builds (the Kubernetes binaries, the notebook image), and must pass before their
# tests.
test: lint venv chp chromium
	PATH="$(CURDIR)/$(CACHE)/node/node_modules/.bin:$$PATH" \
	  $(PY) -m tests.e2e.streams --streams $(E2E_STREAMS) \
	  --before "$(MAKE) --no-print-directory integration unit" $(PYTEST_ARGS)

# BACKEND=magnum: the servers are pods on a Magnum cluster (MagnumSpawner)
BACKEND ?= zun
demo: venv chp
	PATH="$(CURDIR)/$(CACHE)/node/node_modules/.bin:$$PATH" BACKEND=$(BACKEND) \
	  $(if $(filter magnum,$(BACKEND)),LOCAL_CLOUD_MAGNUM=1) $(PY) etc/demo.py

demo-down:
	-$(PY) etc/demo.py --down
	devstack/local-cloud down

docs: venv
	$(PY) docs/gen_config_reference.py

bench: venv
	$(PY) benchmarks/poller_at_scale.py

# Concurrent spawns and stops through a real hub, faults at 10 % of the cloud
# calls, the hub killed once (tests/e2e/burst.py; make e2e runs 20 spawns).
BURST_SPAWNS ?= 200
BURST_CONCURRENCY ?= 20
burst: venv chp
	PATH="$(CURDIR)/$(CACHE)/node/node_modules/.bin:$$PATH" \
	  $(PY) -m tests.e2e.burst --spawns $(BURST_SPAWNS) --concurrency $(BURST_CONCURRENCY)

clean:
	-devstack/local-cloud down
	rm -rf $(VENV) $(CACHE)
