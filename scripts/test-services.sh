#!/usr/bin/env bash
# Makes sure the services the test suite talks to are up: PostgreSQL at 127.0.0.1:5432.
# On the project's machines it runs already; if it was stopped, start it the way the machine does.
set -euo pipefail
pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
if ! pg_up; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    echo "PostgreSQL is not answering on 127.0.0.1:5432; starting it" >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
fi
pg_up || echo "warning: PostgreSQL is not reachable at 127.0.0.1:5432; its tests will fail" >&2

# Headless Chromium for the browser tests (tests/browser), from Debian's package: Playwright drives it
# through executable_path and never downloads a browser of its own. Quick no-op once it is installed.
if [ ! -x /usr/bin/chromium ]; then
  echo "Chromium is missing; installing Debian's chromium package" >&2
  as_root=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then as_root=(sudo); fi
  apt_install() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
  }
  # On a fresh machine the package lists may be empty or stale: refresh them only if the install fails.
  apt_install || { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update && apt_install; } || true
fi
[ -x /usr/bin/chromium ] || echo "warning: /usr/bin/chromium is missing; the browser tests will fail" >&2

# Dovecot for the IMAP poller tests (tests/mail): tests/fakes/dovecot.py starts a private instance with its own
# dovecot.conf in a temp dir; only the binary is needed. Debian's package, like Chromium above.
if [ ! -x /usr/sbin/dovecot ]; then
  echo "Dovecot is missing; installing Debian's dovecot-imapd package" >&2
  as_root=()
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then as_root=(sudo); fi
  apt_install_dovecot() {
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dovecot-imapd
  }
  apt_install_dovecot || { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update && apt_install_dovecot; } || true
fi
[ -x /usr/sbin/dovecot ] || echo "warning: /usr/sbin/dovecot is missing; the IMAP tests (tests/mail) will fail" >&2
