#!/usr/bin/env bash
# How many libvirt labs the vm scenarios run at once on this machine (pytest -n): a lab of
# three TCG guests keeps about 2 cores busy while its guests boot and sync, and needs about
# 2.5 GiB (3 x 512 MiB guests, qemu and page cache); never fewer than one, never more than
# the vm set has scenarios. STACKDRILL_VM_WORKERS overrides it. See README "VM set budget".
set -euo pipefail
if [ -n "${STACKDRILL_VM_WORKERS:-}" ]; then
    echo "$STACKDRILL_VM_WORKERS"
    exit 0
fi
cores=$(nproc)
avail_mib=$(awk '/MemAvailable/ {print int($2 / 1024)}' /proc/meminfo)
by_cores=$(( cores / 2 ))
by_memory=$(( avail_mib / 2560 ))
workers=$(( by_cores < by_memory ? by_cores : by_memory ))
[ "$workers" -ge 1 ] || workers=1
[ "$workers" -le 8 ] || workers=8
echo "$workers"
