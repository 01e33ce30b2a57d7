#!/bin/sh
# Run a command inside a private D-Bus session with an unlocked gnome-keyring, so that the
# keyring tests talk to a real Secret Service. The keyring's files live in a throwaway dir:
# the developer's own keyring is never touched.
set -eu
KEYRING_HOME=$(mktemp -d)
trap 'rm -rf "$KEYRING_HOME"' EXIT
mkdir -p -m 700 "$KEYRING_HOME/run" "$KEYRING_HOME/share"
export LC_TEST_KEYRING_HOME="$KEYRING_HOME"
export XDG_RUNTIME_DIR="$KEYRING_HOME/run"
exec dbus-run-session -- sh -c '
  printf %s "lc-console-test-only" | XDG_DATA_HOME="$LC_TEST_KEYRING_HOME/share" HOME="$LC_TEST_KEYRING_HOME" \
    gnome-keyring-daemon --unlock --components=secrets >/dev/null 2>&1
  export LC_TEST_SECRET_SERVICE=1
  exec "$@"
' sh "$@"
