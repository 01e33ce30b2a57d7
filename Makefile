# The README's two commands: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Debian packages the tests need: a real Secret Service (gnome-keyring on D-Bus) and a real
# headless browser for the OAuth login test (certutil from libnss3-tools makes it trust the
# Salesforce sandbox CA, so certificate checks stay on).
SYS_PKGS := gnome-keyring dbus dbus-bin chromium chromium-driver libnss3-tools
PYTEST_ARGS ?=

.PHONY: demo test lint sysdeps venv bench snapshot-update clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/pip || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	  echo "Could not create $(VENV) with $(PYTHON) (Python >= 3.11 with venv needed;" \
	  "on Debian/Ubuntu: sudo apt-get install python3-venv)."; exit 1; }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	rm -f $(VENV)/.installed-* && touch $@

# The demo keeps its throwaway tokens in the OS keyring like any profile. Where no keyring
# works (a fresh headless machine, SSH), it runs inside a private D-Bus session with a
# throwaway unlocked gnome-keyring (`make sysdeps` installs it). `make demo DEMO_ARGS="--scenario small"`.
DEMO_ARGS ?=
demo: venv
	@if $(BIN)/python -c "import sys; from lc_console.secrets import probe; sys.exit(not probe()[0])" 2>/dev/null; then \
	  $(BIN)/lc-console demo $(DEMO_ARGS); \
	elif command -v dbus-run-session >/dev/null && command -v gnome-keyring-daemon >/dev/null; then \
	  echo "No usable OS keyring here: the demo uses a throwaway gnome-keyring for this run."; \
	  sh tests/with-keyring.sh $(BIN)/lc-console demo $(DEMO_ARGS); \
	else $(BIN)/lc-console demo $(DEMO_ARGS); fi

sysdeps:
	@missing=""; for p in $(SYS_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "Missing Debian packages:$$missing. Install them: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

test: venv sysdeps
	$(BIN)/ruff check .
	sh tests/with-keyring.sh $(BIN)/pytest $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .

bench: venv
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

snapshot-update: venv sysdeps
	sh tests/with-keyring.sh $(BIN)/pytest tests -k snapshot --snapshot-update

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
