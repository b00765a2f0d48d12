"""The split-brain situations of `drbd_split` on real guests: the policy variant applied to
the running resource (its config file rewritten from the variant topology, then
`drbdadm adjust`: drbd-utils 9.22's `drbdadm net-options`/`disk-options` for 8.4 pass no
options at all), the split made with drbdadm and dd, and what each
guest's kernel printed (dmesg) and holds (its backing disk, read with O_DIRECT: a Secondary
refuses to open /dev/drbd0, drbd_main.c drbd_open). The lab is healed and put back to the
default configuration at the end, however the situation ends.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from stackdrill.backends.libvirt.drbd import resource_config
from stackdrill.conformance.drbd_lab import (
    HOSTS,
    PRIMARY,
    RES,
    SECONDARY,
    VG,
    in_sync,
    must,
    proc_drbd,
    reset_connected,
    run,
    topology,
    vm_lab,
    wait,
)
from stackdrill.conformance.model import Fields, Observed
from stackdrill.conformance.situations.drbd_common import vm_states
from stackdrill.conformance.situations.drbd_split import (
    BASE_BLOCKS,
    FIRST_BLOCK,
    SETTLE_S,
    Split,
    marker,
    resync_seen,
    split_brain_line,
    whose,
)
from stackdrill.topology import Topology

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

TRANSIENT = {"WFReportParams", "WFBitMapS", "WFBitMapT", "WFSyncUUID", "SyncSource",
             "SyncTarget", "PausedSyncS", "PausedSyncT", "Disconnecting", "Unconnected",
             "NetworkFailure", "BrokenPipe", "ProtocolError", "TearDown", "Timeout"}


def _backing(lab: LibvirtLab, host: str, topo: Topology) -> str:
    return "/dev/" + lab.nodes[host].disks[topo.drbd[0].disk].target


def apply_config(lab: LibvirtLab, topo: Topology) -> None:
    """Write r0's config from `topo` on both guests (as the backend's provision does)."""
    res = topo.drbd[0]
    devices = {h: _backing(lab, h, topo) for h in HOSTS}
    text = resource_config(topo, res, devices)
    for host in HOSTS:
        must(lab, host, f"cat > /etc/drbd.d/{RES}.res <<'EOF'\n{text}EOF")


def _write(lab: LibvirtLab, host: str, count: int, data: str) -> None:
    if count:
        must(lab, host, f"for i in $(seq 0 {count - 1}); do printf '{data}' | dd "
                        f"of=/dev/drbd0 bs=4096 seek=$(({FIRST_BLOCK}+i)) count=1 conv=sync "
                        "oflag=direct status=none; done", timeout=60)


def _secondary(lab: LibvirtLab, host: str) -> None:
    must(lab, host, f"vgchange -an {VG} >/dev/null 2>&1; drbdadm secondary {RES}")


def _log_mark(lab: LibvirtLab) -> dict[str, int]:
    return {h: int(must(lab, h, "dmesg | wc -l")) for h in HOSTS}


def _log_since(lab: LibvirtLab, mark: dict[str, int]) -> dict[str, str]:
    return {h: must(lab, h, f"dmesg | tail -n +{mark[h] + 1}") for h in HOSTS}


def _settled(lab: LibvirtLab) -> bool:
    conns = [proc_drbd(lab, h).get("connection") for h in HOSTS]
    return not any(c in TRANSIENT for c in conns) and conns != ["WFConnection"] * 2


def _connect_and_settle(lab: LibvirtLab, commands: dict[str, str]) -> None:
    for host, command in commands.items():
        must(lab, host, command, timeout=60)
    wait("the handshake settles", lambda: _settled(lab), 60)
    time.sleep(SETTLE_S / 2)  # a side that saw the peer drop settles later
    wait("the handshake settles", lambda: _settled(lab), 60)


def _split(lab: LibvirtLab, plan: Split) -> None:
    _write(lab, PRIMARY, BASE_BLOCKS, marker("base"))
    for host in (PRIMARY, SECONDARY):
        must(lab, host, f"drbdadm disconnect {RES}", timeout=60)
    _write(lab, PRIMARY, plan.a_blocks, marker(PRIMARY))
    if not plan.a_primary:
        _secondary(lab, PRIMARY)
    must(lab, SECONDARY, f"drbdadm primary {RES}")
    _write(lab, SECONDARY, plan.b_blocks, marker(SECONDARY))
    if not plan.b_primary:
        _secondary(lab, SECONDARY)


def _sb_fields(prefix: str, logs: dict[str, str]) -> Fields:
    return {f"{prefix}_split_brain_{h}": Observed(value=split_brain_line(logs[h]))
            for h in HOSTS}


def _manual(lab: LibvirtLab, plan: Split) -> dict[str, str]:
    """Discard b's data: both StandAlone, b Secondary, b connects --discard-my-data, a
    connects."""
    for host in HOSTS:
        if proc_drbd(lab, host).get("connection") != "StandAlone":
            must(lab, host, f"drbdadm disconnect {RES}", timeout=60)
    if plan.b_primary:
        _secondary(lab, SECONDARY)
    mark = _log_mark(lab)
    _connect_and_settle(lab, {SECONDARY: f"drbdadm connect --discard-my-data {RES}",
                              PRIMARY: f"drbdadm connect {RES}"})
    wait("the manual resync ends", lambda: in_sync(lab), 120)
    return _log_since(lab, mark)


def record(plan: Split) -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    try:
        apply_config(lab, topology(resource=plan.resource))
        for host in HOSTS:
            must(lab, host, f"drbdadm adjust {RES}", timeout=60)
        _split(lab, plan)
        mark = _log_mark(lab)
        _connect_and_settle(lab, dict.fromkeys(HOSTS, f"drbdadm connect {RES}"))
        out = vm_states("reconnect_a", lab, PRIMARY) | vm_states("reconnect_b", lab, SECONDARY)
        out |= _sb_fields("reconnect", _log_since(lab, mark))
        if plan.manual:
            out |= _sb_fields("manual", _manual(lab, plan))
        wait("the resync ends", lambda: in_sync(lab), 120)
        target, bits = resync_seen(_log_since(lab, mark))
        out["sync_target"] = Observed(value=target)
        out["resync_bits"] = Observed(value=bits)
        out |= vm_states("final_a", lab, PRIMARY) | vm_states("final_b", lab, SECONDARY)
        for host in HOSTS:
            block = must(lab, host, f"dd if={_backing(lab, host, topology())} bs=4096 "
                                    f"skip={FIRST_BLOCK} count=1 iflag=direct status=none "
                                    "| head -c 32 | tr -d '\\000'")
            out[f"data_{host}"] = Observed(value=whose(block))
        return out
    finally:
        heal(lab)


def heal(lab: LibvirtLab) -> None:
    """Back to the default config, Connected and in sync (b's data discarded if the two
    still disagree), whatever state the situation left."""
    apply_config(lab, topology())
    if not in_sync(lab):
        for host in HOSTS:
            run(lab, host, f"vgchange -an {VG} >/dev/null 2>&1; drbdadm secondary {RES}; "
                           f"drbdadm disconnect {RES}", timeout=60)
        must(lab, SECONDARY, f"drbdadm connect --discard-my-data {RES}", timeout=60)
        must(lab, PRIMARY, f"drbdadm connect {RES}", timeout=60)
        wait("healed", lambda: in_sync(lab), 180)
    for host in HOSTS:  # the default net and disk options (fencing resource-only) again
        must(lab, host, f"drbdadm adjust {RES}", timeout=60)
    wait("healed", lambda: in_sync(lab), 180)
