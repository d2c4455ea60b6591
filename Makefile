# Wharf: `make run` serves the dashboard, `make test` runs the whole suite.
# Both install what they need first; nothing else has to be set up by hand.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
VENDOR := static/vendor

LOCK     := requirements.lock
DEV_LOCK := requirements-dev.lock
LDAP_LOCK := requirements-ldap.lock
UV_VERSION := 0.13.9

.PHONY: run test lint format bench install install-dev install-ldap assets migrate admin clean \
	lock lock-upgrade check-lock image

# --- set-up ---------------------------------------------------------------

# Python packages come from the lock files only (exact versions, checked hashes); Wharf
# itself is then installed without resolving anything again. A lock file that no longer
# matches pyproject.toml stops the install, saying so: run `make lock`.
check-lock:
	@$(PYTHON) scripts/lock.py check

$(VENV)/.installed: pyproject.toml $(LOCK)
	@$(PYTHON) scripts/lock.py check
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes -r $(LOCK)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(PIP) check --quiet
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml $(DEV_LOCK)
	@$(PYTHON) scripts/lock.py check
	$(PIP) install --quiet --require-hashes -r $(DEV_LOCK)
	$(PIP) check --quiet
	touch $@

# LDAP sign-in (optional): python-ldap compiles against OpenLDAP's headers, on Debian
# `apt-get install libldap2-dev libsasl2-dev`. Without it Wharf runs with LDAP off.
$(VENV)/.installed-ldap: $(VENV)/.installed pyproject.toml $(LDAP_LOCK)
	@$(PYTHON) scripts/lock.py check
	@[ -e /usr/include/ldap.h ] && [ -e /usr/include/sasl/sasl.h ] || { \
	  echo "LDAP sign-in needs OpenLDAP's headers to build python-ldap:" \
	       "apt-get install libldap2-dev libsasl2-dev (CI installs them)." >&2; exit 1; }
	$(PIP) install --quiet --require-hashes --no-build-isolation -r $(LDAP_LOCK)
	$(PIP) check --quiet
	touch $@

# The one command that updates the lock files after pyproject.toml changes (keeps every
# pin it can); `make lock-upgrade` moves every package to the newest version allowed.
$(VENV)/bin/uv:
	[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet 'uv==$(UV_VERSION)'

lock: $(VENV)/bin/uv
	UV=$(VENV)/bin/uv $(PYTHON) scripts/lock.py

lock-upgrade: $(VENV)/bin/uv
	UV=$(VENV)/bin/uv $(PYTHON) scripts/lock.py --upgrade

$(VENDOR)/.installed: package.json
	npm install --no-audit --no-fund --silent
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	cp node_modules/bootstrap/dist/css/bootstrap.min.css $(VENDOR)/
	cp node_modules/bootstrap/dist/js/bootstrap.bundle.min.js $(VENDOR)/
	touch $@

install: check-lock $(VENV)/.installed assets
install-dev: check-lock $(VENV)/.installed-dev assets
install-ldap: check-lock $(VENV)/.installed-ldap
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

# Where every real-server test must run (CI: WHARF_REQUIRE_SERVICES=1), LDAP's are among
# them, so python-ldap is installed first.
test: install-dev $(if $(filter 1,$(WHARF_REQUIRE_SERVICES)),install-ldap)
	$(PY) -m pytest $(PYTEST_ARGS)

# --- the container image ----------------------------------------------------

# `make image` builds the image with buildah (no daemon). Where the base image cannot be
# pulled, scripts/image-base.sh builds it with debootstrap first. pip inside the build is
# given the CA bundle pip uses here (a TLS-inspecting proxy's), mounted for the build only.
IMAGE          ?= localhost/wharf:latest
BUILD_ARGS     ?=
STORAGE_DRIVER ?= vfs
HOST_CA        ?= $(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n "s/^[^=]*\.cert='\(.*\)'$$/\1/p" | head -1)
export STORAGE_DRIVER

image: assets
	./scripts/image-base.sh
	buildah --storage-driver $(STORAGE_DRIVER) bud --isolation chroot --network host --format docker --layers \
	  $(if $(HOST_CA),-v $(HOST_CA):/run/host-ca.crt:ro --build-arg PIP_CERT=/run/host-ca.crt) \
	  $(BUILD_ARGS) -t $(IMAGE) .

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
