# The two commands a fresh machine needs (Python 3.11+): `make demo` and `make test`.
# Both create the virtual environment .venv/ and install the pinned tooling on first use.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test setup check sandbox browser hub

demo: $(STAMP) sandbox
	$(BIN)/tito demo

test: $(STAMP) sandbox browser hub
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/tito check

setup: $(STAMP) sandbox browser hub

# bubblewrap isolates the autograder's kernels (Debian package; installed when we are root)
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap, the autograder's sandbox"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null && apt-get install -y -qq bubblewrap >/dev/null; }; \
	  else \
	    echo "note: install the package bubblewrap for the autograder's sandbox (tito grade warns without it)"; \
	  fi; }

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "TinyTorch needs Python 3.11 or newer, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# headless Chromium for the browser tests of the classroom (Debian package; installed when we are root).
# Playwright drives it; its own browser download cannot work offline.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium, for the browser tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; }; \
	  else \
	    echo "note: install the package chromium for the browser tests (they are skipped without it)"; \
	  fi; }

# A class on JupyterHub (tests/hub): the proxy (npm) beside the hub, and the environment every user's
# server runs, in /opt where every user can read it, built with the system Python for the same reason.
HUB_ENV := /opt/tinytorch-hub
PROXY   := $(VENV)/hub/node_modules/.bin/configurable-http-proxy
hub: $(STAMP)
	@if [ "$$(id -u)" = 0 ]; then \
	  [ -x $(PROXY) ] || { command -v npm >/dev/null 2>&1 && echo "installing configurable-http-proxy" && \
	    npm install --silent --prefix $(VENV)/hub configurable-http-proxy@5.3.0 >/dev/null; }; \
	  [ -x $(HUB_ENV)/bin/jupyterhub-singleuser ] || { echo "building $(HUB_ENV), the environment of a class's servers"; \
	    /usr/bin/python3 -m venv $(HUB_ENV) 2>/dev/null || { export DEBIAN_FRONTEND=noninteractive; \
	      apt-get install -y -qq python3-venv >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq python3-venv >/dev/null; }; \
	      /usr/bin/python3 -m venv $(HUB_ENV); }; \
	    $(HUB_ENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-hub.txt; }; \
	else \
	  echo "note: the JupyterHub test creates users and needs root; it is skipped"; \
	fi
