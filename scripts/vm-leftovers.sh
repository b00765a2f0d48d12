#!/usr/bin/env bash
# Fail when a libvirt lab left anything behind: a domain, network or pool named sd_*,
# a qemu process, a lab directory, a vagrant lab's state or SSH namespace. Run after the
# vm scenarios (scripts/test.sh).
set -uo pipefail
left=$(
    virsh -q list --all --name 2>/dev/null | grep '^sd_'
    virsh -q net-list --all --name 2>/dev/null | grep '^sd_'
    virsh -q pool-list --all --name 2>/dev/null | grep '^sd_'
    pgrep -a qemu-system
    find /var/lib/stackdrill/labs -mindepth 1 -maxdepth 1 2>/dev/null
    # the vagrant backend: a lab's state directory (its boxes in home/ are a cache) and
    # its SSH namespace
    find /var/lib/stackdrill/vagrant -mindepth 1 -maxdepth 1 ! -name home 2>/dev/null
    ip netns list 2>/dev/null | grep -o '^sd_[^ ]*_ssh'
)
if [ -n "$left" ]; then
    echo "vm-leftovers: the libvirt labs left this behind:" >&2
    echo "$left" >&2
    exit 1
fi
