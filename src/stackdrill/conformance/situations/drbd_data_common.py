"""What the DRBD data-path situations (drbd_data, drbd_data_roles, drbd_data_power) share:
raw writes past the LV and where they ended up, the resync and the disk states as the
kernel log shows them on the guests and as the simulator traces them, the resource file
rewritten for a topology variant, and a cut of the replication link.

Every real value is read from /proc/drbd or the kernel log DRBD wrote ("Began resync as
SyncTarget (will sync N KB ...)", "Resync done", `disk( A -> B )`), never re-derived.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.api import DrbdNotice, DrbdStateChanged
from stackdrill.backends.libvirt.drbd import resource_config
from stackdrill.conformance import labs
from stackdrill.conformance.drbd_lab import (
    FREE_OFFSET_MIB,
    HOSTS,
    RES,
    SECONDARY,
    in_sync,
    must,
    proc_drbd,
    run,
    wait,
)
from stackdrill.conformance.model import EXACT, Fields, Observed
from stackdrill.faults import LinkDown
from stackdrill.topology import Topology

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab

BLOCKS_PER_MIB = 256  # 4 KiB blocks, DRBD's bitmap granularity (BM_BLOCK_SIZE)
SETTLE_S = 5.0
MAX_STEPS = 1_000_000  # simulated events walked while watching a disk's states
LOSS_WAIT_S = 45.0  # longer than ping-int + ping-timeout: the link cut is declared by then
_STAMP = re.compile(r"\[\s*(\d+\.\d+)\]\s*(.*)")
_WILL_SYNC = re.compile(r"Began resync as (SyncSource|SyncTarget) \(will sync (\d+) KB")
_DISK_CHANGE = re.compile(r"disk\( (\w+) -> (\w+) \)")


def exact(*names: str) -> dict[str, Any]:
    return dict.fromkeys(names, EXACT)


# ---------------------------------------------------------------- simulator helpers

def sim_write(lab: SimLab, host: str, mib: int, tag: str) -> None:
    """`dd bs=1M count=mib seek=FREE_OFFSET_MIB oflag=direct` as 4 KiB blocks, waited for."""
    device = lab.drbd[RES].device(host)
    first = FREE_OFFSET_MIB * BLOCKS_PER_MIB

    def writes() -> Generator[simpy.Event, Any, None]:
        for block in range(first, first + mib * BLOCKS_PER_MIB):
            yield device.write(block, f"{tag}-{block}")
    labs.sim_run(lab, writes())


def sim_on_both(lab: SimLab, mib: int, tag: str) -> bool:
    """The written blocks are on both backing disks (what `cmp` of the disks says)."""
    first = FREE_OFFSET_MIB * BLOCKS_PER_MIB
    disks = [lab.drbd[RES].nodes[h].disk for h in HOSTS]
    return all(d.peek(b) == f"{tag}-{b}" for d in disks
               for b in range(first, first + mib * BLOCKS_PER_MIB))


def sim_resync(lab: SimLab, since: int) -> Fields:
    """Source, KiB and duration of the first resync traced after event `since`."""
    started = finished = None
    source: str | None = None
    kb: int | None = None
    for traced in lab.tracer.events()[since:]:
        ev = traced.event
        if not isinstance(ev, DrbdNotice):
            continue
        details = dict(ev.details)
        if ev.kind == "resync-started" and started is None:
            started = traced.at
            source, kb = str(details.get("source")), int(str(details.get("kb")))
        elif ev.kind == "resync-finished" and started is not None and finished is None:
            finished = traced.at
    took = None if started is None or finished is None else round(finished - started, 3)
    return {"resync_source": Observed(value=source),
            "resync_kb": Observed(value=kb, unit="KiB"),
            "resync_s": Observed(value=took, unit="s")}


def sim_oos(lab: SimLab, host: str) -> Observed:
    return Observed(value=lab.drbd[RES].status()[host].out_of_sync_kb, unit="KiB")


def sim_settle(lab: SimLab, seconds: float = 60.0) -> None:
    lab.advance(lab.kernel.now + seconds)


def sim_until_resynced(lab: SimLab, limit_s: float = 3600.0) -> None:
    """Until no resync runs, a minute at a time (bounded: a full resync of the simulated
    lab's 90 GB device at its default rate fits in the limit)."""
    deadline = lab.kernel.now + limit_s
    while lab.kernel.now < deadline:
        sim_settle(lab)
        if lab.drbd[RES].resync is None:
            return


# ---------------------------------------------------------------- real-guest helpers

def mark(lab: LibvirtLab, host: str, tag: str) -> None:
    must(lab, host, f"echo sd-mark-{tag} > /dev/kmsg")


def log_since(lab: LibvirtLab, host: str, tag: str | None) -> list[tuple[float, str]]:
    """(printk time, text) of DRBD's kernel-log lines about r0 after the marker `tag`: the
    resource's ("drbd r0: ...") and its device's ("block drbd0: ...", where 8.4 logs disk
    states and the resync); `tag` None: since boot."""
    out = []
    since = "dmesg" if tag is None else f"dmesg | sed -n '/sd-mark-{tag}$/,$p'"
    for line in must(lab, host, since).splitlines():
        found = _STAMP.match(line)
        if found and (f"drbd {RES}:" in found.group(2) or "drbd0:" in found.group(2)):
            out.append((float(found.group(1)), found.group(2)))
    return out


def vm_resync(lines: list[tuple[float, str]], host: str) -> Fields:
    """Source, KiB and duration of the first resync in `host`'s kernel log: from "Began
    resync as ..." to "Resync done" (drbd_worker.c drbd_start_resync, drbd_resync_finished).
    Read on the SyncTarget, whose "Began" follows its before-resync-target helper (a
    usermode drbdadm that takes ~0.4 s under TCG): the span is the data's."""
    started, source, kb, took = None, None, None, None
    for at, text in lines:
        found = _WILL_SYNC.search(text)
        if found and started is None:
            started, kb = at, int(found.group(2))
            other = next(h for h in HOSTS if h != host)
            source = host if found.group(1) == "SyncSource" else other
        elif "Resync done" in text and started is not None and took is None:
            took = round(at - started, 3)
    return {"resync_source": Observed(value=source),
            "resync_kb": Observed(value=kb, unit="KiB"),
            "resync_s": Observed(value=took, unit="s")}


def disk_states(lines: list[tuple[float, str]]) -> str:
    """The disk states one node entered, in order, as "B > C" (from `disk( A -> B )`
    lines; the state it started from is not repeated)."""
    return " > ".join(new for _at, text in lines for _old, new in _DISK_CHANGE.findall(text))


def vm_oos(lab: LibvirtLab, host: str) -> Observed:
    text = must(lab, host, "cat /proc/drbd")
    found = re.search(r"\boos:(\d+)", text)
    return Observed(value=int(found.group(1)) if found else None, unit="KiB")


def dd_write(mib: int, source: str = "/dev/urandom") -> str:
    return (f"dd if={source} of=/dev/drbd0 bs=1M count={mib} seek={FREE_OFFSET_MIB} "
            "oflag=direct 2>&1")


def region_sum(mib: int, device: str) -> str:
    return (f"dd if={device} bs=1M count={mib} skip={FREE_OFFSET_MIB} iflag=direct "
            "2>/dev/null | md5sum | cut -c1-32")


def backing(lab: LibvirtLab, host: str) -> str:
    return "/dev/" + lab.nodes[host].disks["sdb"].target


def vm_on_both(lab: LibvirtLab, mib: int, written: str) -> bool:
    return all(must(lab, h, region_sum(mib, backing(lab, h))) == written for h in HOSTS)


def write_config(lab: LibvirtLab, topo: Topology, adjust: bool = True) -> None:
    """r0's resource file as the libvirt backend writes it for `topo`, applied with
    `drbdadm adjust` on both guests (disk options change in place) when `adjust`."""
    res = topo.drbd_resource(RES)
    config = resource_config(topo, res, {h: backing(lab, h) for h in HOSTS})
    apply = f"drbdadm adjust {RES}" if adjust else "true"
    for host in HOSTS:
        must(lab, host, f"cat > /etc/drbd.d/{RES}.res <<'EOF'\n{config}EOF\n{apply}",
             timeout=60)


def cut_link(lab: LibvirtLab) -> LinkDown:
    fault = LinkDown(host=SECONDARY, network="repl")
    lab.inject(fault)
    wait("both sides declare the peer lost",
         lambda: all(proc_drbd(lab, h).get("connection") not in (None, "Connected")
                     for h in HOSTS), LOSS_WAIT_S)
    return fault


def rejoin_discarding(lab: LibvirtLab, loser: str) -> None:
    """After a split brain: `loser` reconnects with --discard-my-data, the other plainly."""
    winner = next(h for h in HOSTS if h != loser)
    run(lab, loser, f"drbdadm disconnect {RES}; drbdadm secondary {RES}")
    must(lab, loser, f"drbdadm -- --discard-my-data connect {RES}")
    run(lab, winner, f"drbdadm disconnect {RES}; drbdadm connect {RES}")
    wait("the split is resolved and synced", lambda: in_sync(lab), 180)


REPL_NIC_OF_A = "$(ip -o -4 addr show | awk '/ 10\\.62\\.0\\.1\\//{print $2}')"


def sim_disk_changes(lab: SimLab, host: str, since: int) -> str:
    """The disk states `host` entered after trace event `since`, as "B > C": the
    simulator's state-change events, as the kernel log's `disk( A -> B )` lines."""
    seen = [ev.disk for ev in (t.event for t in lab.tracer.events()[since:])
            if isinstance(ev, DrbdStateChanged) and ev.node == host and ev.disk is not None]
    return " > ".join(d for i, d in enumerate(seen) if i == 0 or seen[i - 1] != d)


def sim_disk_states(lab: SimLab, host: str, before: str, until: float) -> str:
    """The disk states `host` enters from `before` up to `until`, as "B > C": its status
    now and after every simulated event (what the kernel log's `disk( A -> B )` lines
    show, short of changes made and undone within one event)."""
    env, seen = lab.kernel.env, [before]
    now = lab.drbd[RES].status()[host].disk
    if now != before:
        seen.append(now)
    for _ in range(MAX_STEPS):
        if env.peek() > until:
            break
        env.step()
        disk = lab.drbd[RES].status()[host].disk
        if disk != seen[-1]:
            seen.append(disk)
    lab.advance(until)
    return " > ".join(seen[1:])
