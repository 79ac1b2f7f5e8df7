# Two commands on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: demo test lint lock redis-server chromium clean ci-under-load screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

redis-server:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq redis-server >/dev/null; }

# the console's browser tests drive Debian's headless Chromium through Playwright (Playwright's
# own browser download is not used)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing chromium (Debian package)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

demo: $(STAMP) redis-server
	$(VENV)/bin/dispatcher demo

# tests run in parallel (pytest-xdist); those that start worker processes or Redis topologies
# share a few lanes (xdist_group), so the machine is never flooded with them at once
test: $(STAMP) redis-server chromium
	$(VENV)/bin/pytest -q -n 4 --dist loadgroup

# every console page at desktop and phone width, into docs/screenshots/ (the README links there)
screenshots: $(STAMP) redis-server chromium
	SCREENSHOTS_TO=docs/screenshots $(VENV)/bin/pytest -q tests/integration/test_console_screenshots.py

# CI from a fresh clone five times in a row, every core kept busy meanwhile
ci-under-load:
	scripts/ci_under_load.sh 5

lint: $(STAMP)
	$(VENV)/bin/ruff check dispatcher tests benchmarks scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# the exact run-time versions the Docker image installs (docs/deploy.md)
lock: $(STAMP)
	$(VENV)/bin/python scripts/lock_requirements.py > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
