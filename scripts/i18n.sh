#!/usr/bin/env bash
# Refresh the bots' message template and merge it into the five translated catalogs.
# After running it, translate every new or fuzzy entry in floorbridge/bots/locale/*/LC_MESSAGES/floorbridge.po;
# tests/bots/test_i18n.py fails until every text is translated.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m babel.messages.frontend -q extract -k _ -k n_:1,2 --no-location --sort-output --omit-header \
  -o floorbridge/bots/locale/floorbridge.pot floorbridge/bots
"$PY" -m babel.messages.frontend -q update --omit-header \
  -i floorbridge/bots/locale/floorbridge.pot -d floorbridge/bots/locale -D floorbridge
