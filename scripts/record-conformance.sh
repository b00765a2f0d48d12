#!/usr/bin/env bash
# Re-record the conformance corpus (tests/conformance/recordings/) from the real software.
# Slow and privileged (root for network namespaces, real guests for libvirt): never part of
# a CI run. CI runs only the comparison (tests/conformance, `stackdrill conformance`).
#
#   sudo scripts/record-conformance.sh                      # every netns situation
#   sudo scripts/record-conformance.sh packet-loss-whole    # just these
#   scripts/record-conformance.sh --backend libvirt         # real-guest situations
#
# Each situation says which backend records it (its recorders, in
# src/stackdrill/conformance/situations/); a situation with a libvirt recorder is picked
# up by `--backend libvirt` with no change here. Every run is bounded in time, sends
# traffic only inside the lab's own namespaces and tears its lab down however it ends.
# Review the diff of the recordings (values and software versions) before committing.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY="$(command -v python || command -v python3)"; fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
backend=netns
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --backend) backend="$2"; shift 2 ;;
        --backend=*) backend="${1#--backend=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ "$backend" = netns ] && [ "$(id -u)" != 0 ]; then
    echo "record-conformance: netns situations need root (network namespaces)" >&2
    exit 2
fi
"$PY" -m stackdrill.conformance.record --backend "$backend" ${args[@]+"${args[@]}"}
echo "== the simulator against the new recordings"
"$PY" -m stackdrill conformance
