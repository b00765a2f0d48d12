#!/usr/bin/env bash
# One command for the tests: set up, lint, type-check, then the unit tests and every
# scenario on the default backend (plus the netns scenarios when root).
# Fails when pytest ran no test (its exit 5).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"; ruff check src tests scenarios bench
echo "== mypy"; mypy
echo "== pytest"
set +e
pytest tests scenarios -n auto -p no:cacheprovider --alluredir reports/allure-results "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
    echo "test: pytest collected no test; failing" >&2
    exit 1
fi
exit "$status"
