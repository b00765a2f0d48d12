#!/usr/bin/env bash
# Set up stackdrill on a fresh machine: system packages (when root and missing), a venv
# in .venv with the package and its test extras. Safe to run again; fast when done.
set -euo pipefail
cd "$(dirname "$0")/.."

want_packages() {
    # Debian packages from the given lists that are not installed yet.
    local pkg
    for list in "$@"; do
        [ -f "$list" ] || continue
        grep -v '^\s*#' "$list" | while read -r pkg; do
            [ -n "$pkg" ] || continue
            dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
                || echo "$pkg"
        done
    done
}

lists=(scripts/system-packages.txt)
if [ "$(id -u)" = 0 ]; then
    lists+=(scripts/system-packages-netns.txt scripts/system-packages-libvirt-dev.txt)
    # qemu, libvirt, debootstrap, vagrant for the VM backend (STACKDRILL_VM=0 skips them)
    [ "${STACKDRILL_VM:-1}" = 1 ] && lists+=(scripts/system-packages-vm.txt)
fi
missing=$(want_packages "${lists[@]}" | sort -u | tr '\n' ' ')
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "setup: installing system packages: $missing"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
    else
        echo "setup: missing system packages (optional, for pictures and the netns backend): $missing" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.stackdrill-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing stackdrill into .venv"
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e '.[test,report,netns,postgres,fuzz]'
    # libvirt-python builds against libvirt-dev; its unit tests use test:///default
    if pkg-config --exists libvirt 2>/dev/null; then
        .venv/bin/python -m pip install -q 'libvirt-python>=9' 'python-vagrant>=1.0'
    fi
    touch "$stamp"
fi
