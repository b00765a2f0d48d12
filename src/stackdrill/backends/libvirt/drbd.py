"""DRBD 8.4 in the guests: the resource file from the topology, bring-up, and status.

The guest kernel is Debian's 6.1, whose in-tree DRBD is 8.4.11 (no DRBD 9 without drbd-dkms),
so the configuration uses 8.4 syntax (`on <host> { device; disk; address; meta-disk }`) and the
status comes from /proc/drbd, which 8.4 keeps as its stable report. Field names follow
`checks.drbd` (role, disk, connection, peer_role, peer_disk), so the simulator's and the
guests' observations compare field by field.

Resync settings: a fixed rate (`c-plan-ahead 0`) instead of the dynamic controller, the
topology's `resync_rate_mbit` (default 800 Mbit/s, ~100 MiB/s; measured in TCG guests, 64 MiB
syncs in ~3 s instead of ~16 s). drbd-8.4 counts resync-rate in KiB/s (drbd_worker.c
drbd_rs_number_requests: rate / 4 KiB requests per 100 ms), so the field is converted to KiB/s
here and means the same on the guests as in the simulator.
"""

from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING

from stackdrill.api import UNCONFIGURED, DrbdNodeStatus
from stackdrill.backends.libvirt import fencing
from stackdrill.backends.libvirt.agent import GuestCommandError
from stackdrill.topology import DrbdResource, Topology
from stackdrill.waiting import WaitTimeout, wait_until

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

PORT_BASE = 7788
POWER_DIR = "/run/stackdrill/power"  # <host> -> on|off, as the lab's power controller says
FENCE_PEER = "/usr/local/sbin/sd-fence-peer"
# /proc/drbd, split brains seen in the kernel log, and each minor's size in 512-byte sectors
# (sysfs: 8.4 refuses to open a Secondary's /dev/drbdN, EMEDIUMTYPE)
STATUS_COMMAND = ("cat /proc/drbd; echo ===; dmesg | grep -c 'Split-Brain detected'; "
                  "echo ===; for d in /sys/class/block/drbd*; do [ -e \"$d/size\" ] && "
                  "echo \"${d##*/} $(cat \"$d/size\")\"; done; true")
_LINE = re.compile(
    r"^\s*(?P<minor>\d+): cs:(?P<cs>\S+) ro:(?P<ro>\S+)/(?P<pro>\S+) "
    r"ds:(?P<ds>\S+)/(?P<pds>\S+)(?: (?P<proto>[ABC]))?(?:\s+(?P<susp>[rs])\S*)?"
)
_OOS = re.compile(r"\boos:(\d+)")


def resource_config(topology: Topology, res: DrbdResource, devices: dict[str, str]) -> str:
    """The /etc/drbd.d/<name>.res text; `devices` maps host -> backing block device."""
    net = topology.network(res.network)
    lines = [
        f"resource {res.name} {{",
        f"  protocol {res.protocol.value};",
        "  net {",
        f"    after-sb-0pri {res.after_sb_0pri};",
        f"    after-sb-1pri {res.after_sb_1pri};",
        f"    after-sb-2pri {res.after_sb_2pri};",
        f"    ping-int {res.net.ping_int};",
        f"    ping-timeout {res.net.ping_timeout};",
        f"    timeout {res.net.timeout};",
        f"    ko-count {res.net.ko_count};",
        f"    connect-int {res.net.connect_int};",
    ]
    if res.allow_two_primaries:
        lines.append("    allow-two-primaries yes;")
    if res.verify_alg is not None:
        lines.append(f"    verify-alg {res.verify_alg};")
    if res.csums_alg is not None:
        lines.append(f"    csums-alg {res.csums_alg};")
    lines += ["  }"]
    if res.fencing != "dont-care":
        lines += ["  handlers {", f'    fence-peer "{FENCE_PEER}";', "  }"]
    lines += [
        "  disk {",
        f"    on-io-error {res.on_io_error};",
        f"    fencing {res.fencing};",
        "    c-plan-ahead 0;",
        f"    resync-rate {res.resync_rate_kib}k;",
        f"    c-max-rate {res.resync_rate_kib}k;",
        "  }",
    ]
    for host in res.nodes:
        lines += [
            f"  on {host} {{",
            f"    device /dev/drbd{res.minor};",
            f"    disk {devices[host]};",
            f"    address {net.addresses[host]}:{PORT_BASE + res.minor};",
            "    meta-disk internal;",
            "  }",
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def parse_proc_drbd(text: str, minor: int) -> DrbdNodeStatus | None:
    """One minor's state from /proc/drbd (8.4): Unconfigured (as `drbdadm` and the
    simulator say it) when the module runs but the minor is down or absent; None when
    there is no DRBD in the guest at all."""
    if not text.lstrip().startswith("version:"):
        return None
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _LINE.match(line)
        if not match or int(match["minor"]) != minor:
            continue
        oos = 0
        for follow in lines[index + 1:index + 3]:
            found = _OOS.search(follow)
            if found:
                oos = int(found.group(1))
                break
        return DrbdNodeStatus(role=match["ro"], peer_role=match["pro"], disk=match["ds"],
                              peer_disk=match["pds"], connection=match["cs"],
                              out_of_sync_kb=oos, suspended=match["susp"] == "s")
    return UNCONFIGURED


def device_kb(sizes: str, minor: int) -> int | None:
    """drbdN's size in KiB from "drbdN SECTORS" lines (None: absent, or 0 while down)."""
    for line in sizes.splitlines():
        name, _, sectors = line.strip().partition(" ")
        if name == f"drbd{minor}" and sectors.isdigit() and int(sectors) > 0:
            return int(sectors) // 2
    return None


def fence_peer_script(topology: Topology, host: str) -> str:
    """The fence-peer handler the simulator models. Under `resource-and-stonith` on a node
    whose cluster fences by power, it shoots the peer through the cluster's fence agent
    (as stonith_admin-fence-peer.sh) and exits 7, "peer was stonithed", once it is off.
    Otherwise the peer counts as fenced when the power controller reports it off (exit 7,
    so DRBD marks it Outdated and may promote), else it cannot be outdated (exit 1, DRBD
    refuses); the guest cannot ask libvirt itself, so the lab mirrors power states into
    POWER_DIR."""
    shoots = host in fencing.fenced_hosts(topology)
    cases = [f"    {res.name}) peer={next(n for n in res.nodes if n != host)}"
             f"{' stonith=1' if shoots and res.fencing == 'resource-and-stonith' else ''} ;;"
             for res in topology.drbd if host in res.nodes]
    return "\n".join([
        "#!/bin/sh",
        "stonith=0",
        'case "$DRBD_RESOURCE" in', *cases, "    *) exit 1 ;;", "esac",
        f'if [ "$stonith" = 1 ]; then {fencing.AGENT} --host "$peer" && exit 7; exit 1; fi',
        f'[ "$(cat {POWER_DIR}/$peer 2>/dev/null)" = off ] && exit 7',
        "exit 1", "",
    ])


def provision(lab: LibvirtLab, res: DrbdResource) -> None:
    """Write the resource file on both nodes, create metadata, attach and connect; make the
    topology's first primary Primary with --force (which starts the initial full sync)."""
    devices = {h: "/dev/" + lab.nodes[h].disks[res.disk].target for h in res.nodes}
    config = resource_config(lab.topology, res, devices)
    for host in res.nodes:
        lab.run(host, f"mkdir -p /etc/drbd.d && cat > /etc/drbd.d/{res.name}.res <<'EOF'\n"
                      f"{config}EOF").check()
        lab.run(host, f"cat > {FENCE_PEER} <<'EOF'\n{fence_peer_script(lab.topology, host)}"
                      f"EOF\nchmod 755 {FENCE_PEER}").check()
        lab.run(host, f"drbdadm -- --force create-md {res.name} && drbdadm up {res.name}",
                timeout=60).check()
        lab.log("drbd-up", resource=res.name, host=host)
    if res.primary:
        lab.run(res.primary[0], f"drbdadm primary --force {res.name}").check()
        lab.log("drbd-primary", resource=res.name, host=res.primary[0])


def promote_other_primaries(lab: LibvirtLab, res: DrbdResource) -> None:
    """Dual-primary: the second node can be promoted only once it has access to UpToDate
    data ("Need access to UpToDate data" otherwise), so this runs after the initial sync."""
    for host in res.primary[1:]:
        lab.run(host, f"drbdadm primary {res.name}").check()
        lab.log("drbd-primary", resource=res.name, host=host)


# connection states in the middle of a handshake: a drill that ends in one was judged
# before the real software finished what its schedule started (a slow boot, a slow runner)
HANDSHAKING = frozenset({"WFReportParams", "WFSyncUUID", "WFBitMapS", "WFBitMapT",
                         "StartingSyncS", "StartingSyncT"})
SETTLE_POLL_S = 1.0


def handshaking(lab: LibvirtLab) -> list[str]:
    """'r0@bob WFSyncUUID' for every node of every resource caught mid-handshake now."""
    return [f"{res.name}@{host} {st.connection}" for res in lab.topology.drbd
            for host, st in sorted(status(lab, res).items()) if st.connection in HANDSHAKING]


def settle_handshakes(lab: LibvirtLab, timeout_s: float) -> list[str]:
    """Wait (bounded, on the wall clock) until no DRBD node is mid-handshake; what still is
    when the time is up."""
    seen: list[list[str]] = []

    def settled() -> bool:
        seen.append(handshaking(lab))
        return not seen[-1]

    with suppress(WaitTimeout):
        wait_until(settled, timeout=timeout_s, interval=SETTLE_POLL_S,
                   what="DRBD handshakes finished")
    return seen[-1]


def status(lab: LibvirtLab, res: DrbdResource) -> dict[str, DrbdNodeStatus]:
    """resource state per reachable node; split_brain from the kernel log."""
    out: dict[str, DrbdNodeStatus] = {}
    for host in res.nodes:
        try:
            result = lab.run(host, STATUS_COMMAND)
        except GuestCommandError:
            continue  # off, hung or booting: not observed
        proc, _, rest = result.stdout.partition("===")
        sb, _, sizes = rest.partition("===")
        state = parse_proc_drbd(proc, res.minor)
        if state is not None:
            out[host] = replace(state, split_brain=sb.strip() not in {"", "0"},
                                size_kb=device_kb(sizes, res.minor))
    return out
