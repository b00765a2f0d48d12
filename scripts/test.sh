#!/usr/bin/env bash
# One command for the tests: set up, lint, type-check, then the unit tests and every
# scenario on the default backend, and (as root) the network drills again on the real
# kernel with the netns backend, and the `vm` scenarios on real guests through libvirt.
# Fails when pytest ran no test (its exit 5) and when a lab leaves anything behind.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"

echo "== ruff"; ruff check src tests scenarios bench scripts
echo "== mypy"; mypy
echo "== pytest"
run_pytest() {
    set +e
    pytest "$@"
    local status=$?
    set -e
    if [ "$status" = 5 ]; then
        echo "test: pytest collected no test for: $*; failing" >&2
        exit 1
    fi
    [ "$status" = 0 ] || exit "$status"
}

if [ "$(id -u)" = 0 ] && [ "${STACKDRILL_SKIP_NETNS:-0}" != 1 ]; then
    # as root the netns backend must be usable: its unit tests and its part of the backend
    # contract suite (tests/contract) would otherwise skip, and the run pass without them
    python -c 'import sys; from stackdrill.backends.netns import NetnsBackend as B
reason = B.available(); reason and sys.exit(f"test: netns backend unavailable: {reason}")'
fi
run_pytest tests scenarios -n auto -p no:cacheprovider --alluredir reports/allure-results "$@"
if [ "$(id -u)" = 0 ] && [ "${STACKDRILL_SKIP_NETNS:-0}" != 1 ]; then
    echo "== pytest scenarios on the netns backend (real namespaces, VXLAN, nftables)"
    # the drills' durations pass in real time: spread them over 5 workers
    run_pytest scenarios -m 'not vm' --lab-backend netns -k network -n 5 -p no:cacheprovider
    ip netns list | grep -q '^sd-' && { echo "test: netns left behind" >&2; ip netns list >&2; exit 1; }
fi
if [ "$(id -u)" = 0 ] && [ "${STACKDRILL_VM:-1}" = 1 ]; then
    echo "== pytest scenarios -m vm on the libvirt backend (real Debian guests, DRBD 8.4, LVM)"
    # the guest image is cached by a hash of its inputs: built once (~1 min), then reused
    python lab/images/build.py >/dev/null
    # as root with the VM packages installed the backend must be usable: a run where every
    # vm scenario skipped would pass without having booted anything
    python -c 'import sys; from stackdrill.backends.libvirt import LibvirtBackend as B
reason = B.available(); reason and sys.exit(f"test: libvirt backend unavailable: {reason}")'
    # labs at a time from the machine (README "VM set budget"): a TCG lab of 3 guests
    # keeps about 2 cores busy while it boots and needs about 2.5 GiB; at least one
    workers=$(bash scripts/vm-workers.sh)
    echo "test: vm scenarios on $workers worker(s) ($(nproc) cores, $(awk '/MemAvailable/ {printf "%.0f", $2/1048576}' /proc/meminfo) GiB available)"
    set +e
    pytest scenarios -m vm --lab-backend libvirt -n "$workers" -p no:cacheprovider \
        --alluredir reports/allure-results --junitxml reports/vm-scenarios.xml
    status=$?
    set -e
    bash scripts/vm-leftovers.sh
    # 3: only infrastructure errors (a lab not ready, a machine too slow): no verdict, and
    # CI sees it as its own state; 5: nothing collected; anything else as pytest said it
    case "$status" in
        0) ;;
        3) echo "test: vm scenarios: infrastructure errors only (no FAIL); see 'lab not ready'" >&2
           exit 3 ;;
        5) echo "test: pytest collected no vm scenario; failing" >&2; exit 1 ;;
        *) exit "$status" ;;
    esac
    # a vm scenario the backend refused (skipped with its reason) is a failure here
    python - <<'EOF'
import sys
import xml.etree.ElementTree as ET

suites = ET.parse("reports/vm-scenarios.xml").getroot().iter("testsuite")
skipped = sum(int(s.get("skipped", 0)) for s in suites)
sys.exit(f"test: {skipped} vm scenario(s) skipped on libvirt" if skipped else 0)
EOF
fi
exit 0
