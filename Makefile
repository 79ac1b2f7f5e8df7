# Two commands on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: demo test lint lock redis-server chromium clean

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

test: $(STAMP) redis-server chromium
	$(VENV)/bin/pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check dispatcher tests benchmarks scripts
	$(VENV)/bin/mypy

# the exact run-time versions the Docker image installs (docs/deploy.md)
lock: $(STAMP)
	$(VENV)/bin/python scripts/lock_requirements.py > requirements.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
