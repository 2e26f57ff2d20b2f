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
