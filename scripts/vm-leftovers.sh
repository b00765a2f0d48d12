#!/usr/bin/env bash
# Fail when a libvirt lab left anything behind: a domain, network or pool named sd_*
# (on the default daemon and on every second daemon of scripts/second-libvirtd.sh that
# runs), a qemu process, a lab directory, a lab's VXLAN port (sdvx*, in any namespace of
# those daemons), a record of the daemons a lab used, or a vagrant lab's state directory
# or SSH namespace. Run after the vm scenarios.
set -uo pipefail
uris=("qemu:///system")
for sock in /run/stackdrill/hv/*/libvirt-sock; do
    [ -S "$sock" ] && uris+=("qemu+unix:///system?socket=$sock")
done
left=$(
    for uri in "${uris[@]}"; do
        virsh -c "$uri" -q list --all --name 2>/dev/null | grep '^sd_'
        virsh -c "$uri" -q net-list --all --name 2>/dev/null | grep '^sd_'
        virsh -c "$uri" -q pool-list --all --name 2>/dev/null | grep '^sd_'
    done
    pgrep -a qemu-system
    find /var/lib/stackdrill/labs /var/lib/stackdrill/libvirt-uris -mindepth 1 -maxdepth 1 2>/dev/null
    ip -br link 2>/dev/null | grep -o '^sdvx[^ @]*'
    for ns in $(ip netns list 2>/dev/null | awk '/^sdhv-/ {print $1}'); do
        ip -n "$ns" -br link 2>/dev/null | grep -o '^sdvx[^ @]*' | sed "s/^/$ns: /"
    done
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
