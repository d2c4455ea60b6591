# Wharf: `make run` serves the dashboard, `make test` runs the whole suite.
# Both install what they need first; nothing else has to be set up by hand.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
VENDOR := static/vendor

.PHONY: run test lint format bench install install-dev assets migrate admin clean

# --- set-up ---------------------------------------------------------------

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[dev]'
	touch $@

$(VENDOR)/.installed: package.json
	npm install --no-audit --no-fund --silent
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	cp node_modules/bootstrap/dist/css/bootstrap.min.css $(VENDOR)/
	cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js $(VENDOR)/
	touch $@

install: $(VENV)/.installed assets
install-dev: $(VENV)/.installed-dev assets
assets: $(VENDOR)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

admin: migrate
	$(PY) manage.py ensure_admin

# --- the two commands -----------------------------------------------------

# make run is the development path: keys are generated under var/ unless set.
run migrate admin: export DEBUG ?= 1

run: admin
	$(PY) manage.py collectstatic --noinput --verbosity 0
	PYTHON=$(PY) ./scripts/run-all.sh

test: install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

# --- the rest -------------------------------------------------------------

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DJANGO_SETTINGS_MODULE=config.settings_test $(PY) manage.py check
	DJANGO_SETTINGS_MODULE=config.settings_test $(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/mypy

format: install-dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: install-dev
	@for b in bench/*.py; do [ -e "$$b" ] || continue; echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) node_modules $(VENDOR)
