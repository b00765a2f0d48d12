#!/usr/bin/env bash
# One set of scenarios on real guests through libvirt: `bash scripts/vm-set.sh MARKER`
# runs `pytest scenarios -m MARKER --lab-backend libvirt` (as root, with the VM packages).
# scripts/test.sh runs the `vm` set (every CI run); scripts/test-vm-peer.sh the `vm_peer`
# set (the peer suites' situations on guests, README "VM set budget"). Exit 3 when only
# infrastructure errors happened; a set that collected nothing, skipped a scenario or
# left a lab behind fails.
set -euo pipefail
cd "$(dirname "$0")/.."
marker="$1"
export PATH="$PWD/.venv/bin:$PATH"
echo "== pytest scenarios -m $marker on the libvirt backend (real Debian guests, DRBD 8.4, LVM)"
# the guest image is cached by a hash of its inputs: built once (~1 min), then reused
python lab/images/build.py >/dev/null
# as root with the VM packages installed the backend must be usable: a run where every
# vm scenario skipped would pass without having booted anything
python -c 'import sys; from stackdrill.backends.libvirt import LibvirtBackend as B
reason = B.available(); reason and sys.exit(f"test: libvirt backend unavailable: {reason}")'
# labs at a time from the machine (README "VM set budget"): a TCG lab of 3 guests
# keeps about 2 cores busy while it boots and needs about 2.5 GiB; at least one
workers=$(bash scripts/vm-workers.sh)
echo "test: $marker scenarios on $workers worker(s) ($(nproc) cores, $(awk '/MemAvailable/ {printf "%.0f", $2/1048576}' /proc/meminfo) GiB available)"
junit="reports/$marker-scenarios.xml"
set +e
pytest scenarios -m "$marker" --lab-backend libvirt -n "$workers" -p no:cacheprovider \
    --alluredir reports/allure-results --junitxml "$junit"
status=$?
set -e
bash scripts/vm-leftovers.sh
# 3: only infrastructure errors (a lab not ready, a machine too slow): no verdict, and
# CI sees it as its own state; 5: nothing collected; anything else as pytest said it
case "$status" in
    0) ;;
    3) echo "test: $marker scenarios: infrastructure errors only (no FAIL); see 'lab not ready'" >&2
       exit 3 ;;
    5) echo "test: pytest collected no $marker scenario; failing" >&2; exit 1 ;;
    *) exit "$status" ;;
esac
# a scenario the backend refused (skipped with its reason) is a failure here
JUNIT="$junit" MARKER="$marker" python - <<'EOF'
import os
import sys
import xml.etree.ElementTree as ET

suites = ET.parse(os.environ["JUNIT"]).getroot().iter("testsuite")
skipped = sum(int(s.get("skipped", 0)) for s in suites)
sys.exit(f"test: {skipped} {os.environ['MARKER']} scenario(s) skipped on libvirt"
         if skipped else 0)
EOF
