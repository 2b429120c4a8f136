#!/usr/bin/env bash
# Creators' report catalogues (gettext, managed with Babel).
#   scripts/i18n.sh            re-extract the strings, update every language's .po, compile the .mo files
#   scripts/i18n.sh init xx    start a new language xx (then translate kanda/reports/locales/xx/LC_MESSAGES/messages.po
#                              and run scripts/i18n.sh again)
# The compiled .mo files are committed: tests/reports/test_render_i18n.py fails when one is stale or a string has
# no translation.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=${PYBABEL:-.venv/bin/pybabel}
LOCALES=kanda/reports/locales

"$PYBABEL" extract -F "$LOCALES/babel.cfg" -o "$LOCALES/messages.pot" --project=kanda --version=0.1 \
    --add-location=file --sort-output --no-wrap --copyright-holder="kanda contributors" kanda/reports
if [[ "${1:-}" == "init" ]]; then
    "$PYBABEL" init -i "$LOCALES/messages.pot" -d "$LOCALES" -l "${2:?usage: scripts/i18n.sh init <language>}" --no-wrap
    exit 0
fi
"$PYBABEL" update -i "$LOCALES/messages.pot" -d "$LOCALES" --no-wrap --ignore-obsolete
"$(dirname "$PYBABEL")/python" scripts/i18n_fill_source.py "$LOCALES/en/LC_MESSAGES/messages.po"
"$PYBABEL" compile -d "$LOCALES" --statistics
