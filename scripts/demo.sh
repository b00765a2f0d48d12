#!/usr/bin/env bash
# One command for a newcomer: set everything up, then run a disaster drill on the
# default (simulated) backend and write its report next to you.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
drill=${1:-lab/drills/nova-host-failure.yaml}
exec .venv/bin/stackdrill run "$drill" --report reports/"$(basename "$drill" .yaml)".html
