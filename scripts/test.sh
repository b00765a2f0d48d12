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
# a throwaway PostgreSQL on a unix socket (no TCP) for the inventory tests; they fail,
# not skip, without it (STACKDRILL_TEST_POSTGRES_REQUIRED)
pg_dir=$(mktemp -d /tmp/sd-test-pg-XXXXXX)
trap 'bash scripts/postgres.sh stop "$pg_dir"' EXIT
STACKDRILL_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start "$pg_dir")
export STACKDRILL_TEST_POSTGRES_URL STACKDRILL_TEST_POSTGRES_REQUIRED=1
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
    bash scripts/vm-set.sh vm
fi
exit 0
