#!/usr/bin/env bash
# A second libvirt daemon on this machine, as a second hypervisor for a lab that spans
# daemons (README "A lab across hypervisors"):
#
#   bash scripts/second-libvirtd.sh start NAME [SUBNET]   # as root; NAME e.g. hv2
#   bash scripts/second-libvirtd.sh status NAME
#   bash scripts/second-libvirtd.sh stop NAME
#
# It runs libvirtd + virtlogd in their own network namespace (sdhv-NAME) and mount
# namespace. There /run/libvirt, /etc/libvirt, /var/lib/libvirt, /var/cache/libvirt and
# /var/log/libvirt are bind mounts of this daemon's own directories, so it never sees the
# first daemon's domains, networks, pools, sockets or logs (its /etc/libvirt gets only
# the *.conf files and the nwfilter definitions). Its bridges live in its namespace.
# Clients reach it at qemu+unix:///system?socket=/run/stackdrill/hv/NAME/libvirt-sock
# (the one socket a topology may name without STACKDRILL_ALLOW_LIBVIRT_URI_PARAMS).
# The underlay between the two hypervisors is a veth pair, sdvuNAME here and `uplink` in
# the namespace, with SUBNET's first two addresses (default 192.168.250.0/30: .1 here,
# .2 there) and MTU $UNDERLAY_MTU (default 9000, so a lab network of 1500 fits inside
# VXLAN). The lab bridges carry no address; the underlay is not a lab bridge.
# `stop` refuses while the daemon still has domains (a lab runs there): `stackdrill down`.
set -euo pipefail

usage() { echo "usage: $0 start|status|stop NAME [SUBNET]" >&2; exit 2; }
[ $# -ge 2 ] || usage
action=$1 name=$2 subnet=${3:-192.168.250.0/30}
[[ "$name" =~ ^[a-z][a-z0-9]{0,7}$ ]] || { echo "$0: NAME must match [a-z][a-z0-9]{0,7}" >&2; exit 2; }
mtu=${UNDERLAY_MTU:-9000}
ns="sdhv-$name"
veth="sdvu$name"
run="/run/stackdrill/hv/$name"        # the daemon's /run/libvirt: its sockets, pid files
state="/var/lib/stackdrill/hv/$name"  # its /etc/libvirt, /var/lib/libvirt, ... (bind mounts)
uri="qemu+unix:///system?socket=$run/libvirt-sock"

answers() { [ -S "$run/libvirt-sock" ] && timeout 20 virsh -c "$uri" version >/dev/null 2>&1; }

# a pid from a pid file, if that process still runs the program named
pid_of() {
    local file="$run/$1.pid" pid
    [ -f "$file" ] || return 1
    pid=$(cat "$file" 2>/dev/null) || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    grep -qs "$1" "/proc/$pid/cmdline" || return 1
    grep -qs '^State:.*Z' "/proc/$pid/status" && return 1  # exited, not yet reaped
    echo "$pid"
}

addresses() {  # "HERE THERE PREFIX" from SUBNET
    python3 - "$subnet" <<'EOF'
import ipaddress, sys
net = ipaddress.ip_network(sys.argv[1], strict=True)
hosts = list(net.hosts()) if net.num_addresses <= 1024 else None
if not hosts or len(hosts) < 2:
    sys.exit("SUBNET needs at least two host addresses (at most a /22)")
print(hosts[0], hosts[1], net.prefixlen)
EOF
}

start() {
    if answers; then echo "second-libvirtd: $name already answers at $uri"; return 0; fi
    read -r here there prefix < <(addresses)
    if ip netns list | grep -qw "^$ns"; then
        echo "second-libvirtd: namespace $ns exists but no daemon answers; run: $0 stop $name" >&2
        exit 1
    fi
    install -d -m 0700 /run/stackdrill /run/stackdrill/hv
    install -d -m 0700 "$run" "$state"
    install -d -m 0755 "$state/etc" "$state/lib" "$state/cache" "$state/log"
    install -d -m 0755 "$state/lib/qemu" "$state/lib/network" "$state/lib/dnsmasq"
    cp /etc/libvirt/*.conf "$state/etc/"
    cp -a /etc/libvirt/nwfilter "$state/etc/"
    ip netns add "$ns"
    ip link add "$veth" mtu "$mtu" type veth peer name uplink mtu "$mtu" netns "$ns"
    ip addr add "$here/$prefix" dev "$veth"
    ip link set "$veth" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$there/$prefix" dev uplink
    ip -n "$ns" link set uplink up
    # `ip netns exec` mounts the namespace's own /sys (libvirt reads its bridges there);
    # unshare makes the bind mounts private to the daemons
    ip netns exec "$ns" unshare --mount --propagation private sh -c "
        mount --bind '$run' /run/libvirt &&
        mount --bind '$state/etc' /etc/libvirt &&
        mount --bind '$state/lib' /var/lib/libvirt &&
        mount --bind '$state/cache' /var/cache/libvirt &&
        mount --bind '$state/log' /var/log/libvirt &&
        virtlogd -d -p /run/libvirt/virtlogd.pid &&
        libvirtd -d -p /run/libvirt/libvirtd.pid"
    for _ in $(seq 1 60); do
        if answers; then
            echo "second-libvirtd: $name answers at $uri (underlay $here <-> $there, MTU $mtu)"
            return 0
        fi
        sleep 0.5
    done
    echo "second-libvirtd: $name did not answer within 30 s" >&2
    exit 1
}

stop() {
    if answers; then
        left=$(virsh -c "$uri" -q list --all --name | sed '/^$/d')
        if [ -n "$left" ]; then
            echo "second-libvirtd: $name still has domains (stackdrill down --all first):" >&2
            echo "$left" >&2
            exit 1
        fi
    fi
    for daemon in libvirtd virtlogd; do
        if pid=$(pid_of "$daemon"); then
            kill "$pid"
            for _ in $(seq 1 50); do pid_of "$daemon" >/dev/null || break; sleep 0.2; done
        fi
    done
    ip netns list | grep -qw "^$ns" && ip netns del "$ns"  # its links (and the veth) go too
    rm -rf "$run" "$state"
    echo "second-libvirtd: $name stopped"
}

case "$action" in
    start) start ;;
    stop) stop ;;
    status) if answers; then echo "$name answers at $uri"; else echo "$name: not running"; exit 1; fi ;;
    *) usage ;;
esac
