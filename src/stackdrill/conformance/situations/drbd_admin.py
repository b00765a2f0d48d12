"""drbdadm state changes that DRBD 8.4's rules refuse or reshape (drbd_state.c
is_valid_state / is_valid_soft_transition / sanitize_state, drbd_nl.c handlers), each run
on the two-node lab of `drbd_lab` from a declared starting state:

- secondary while the Primary's device is held open (an active LV of a VG on it);
- detach of the only UpToDate disk (the peer detached first), then detach --force;
- a graceful disconnect under `fencing resource-only`, from the Primary and from the
  Secondary;
- a Connected Diskless Primary re-attaching its own disk (writes made while it was
  Diskless are on the peer only).

Codes, messages and states are compared exactly: they are what a user reads.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.conformance import labs
from stackdrill.conformance.drbd_lab import (
    FREE_OFFSET_MIB,
    LV,
    PRIMARY,
    RES,
    SECONDARY,
    VG,
    must,
    proc_drbd,
    reset_connected,
    run,
    sim_lab,
    vm_lab,
    wait,
)
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation
from stackdrill.conformance.situations.drbd_common import (
    answer,
    sim_answer,
    sim_call,
    sim_states,
    sim_wait,
    state_names,
    vm_states,
)

if TYPE_CHECKING:
    from stackdrill.backends.sim.lab import SimLab

SETTLE_S = 5.0  # a graceful disconnect reaches the peer well within this


def _exact(*names: str) -> dict[str, Any]:
    return dict.fromkeys(names, EXACT)


# ---------------------------------------------------------------- secondary held open

def _sim_held_open() -> Fields:
    lab = sim_lab()
    res = lab.drbd[RES]

    def steps() -> Generator[simpy.Event, Any, Fields]:
        out = sim_answer("secondary", (yield from sim_wait(res.demote(PRIMARY))))
        out["role_after_refusal"] = Observed(value=res.status()[PRIMARY].role)
        yield lab.lvm_hosts[PRIMARY].deactivate(VG, LV)
        out |= sim_answer("secondary_released", (yield from sim_wait(res.demote(PRIMARY))))
        out["role_after_release"] = Observed(value=res.status()[PRIMARY].role)
        return out
    return labs.sim_run(lab, steps())


def _vm_held_open() -> Fields:
    lab = vm_lab()
    reset_connected(lab, lv_active=True)
    out = answer("secondary", *run(lab, PRIMARY, f"drbdadm secondary {RES}"))
    out["role_after_refusal"] = Observed(value=proc_drbd(lab, PRIMARY).get("role"))
    must(lab, PRIMARY, f"vgchange -an {VG}", timeout=60)
    out |= answer("secondary_released", *run(lab, PRIMARY, f"drbdadm secondary {RES}"))
    out["role_after_release"] = Observed(value=proc_drbd(lab, PRIMARY).get("role"))
    return out


HELD_OPEN = Situation(
    name="drbd-secondary-held-open",
    exercises="drbdadm secondary on the Primary while an active LV holds /dev/drbd0 open, "
              "then again after vgchange -an",
    tolerances=_exact("secondary_exit", "secondary_message", "role_after_refusal",
                      "secondary_released_exit", "secondary_released_message",
                      "role_after_release"),
    simulate=_sim_held_open, recorders={"libvirt": _vm_held_open})


# ---------------------------------------------------------------- detach last UpToDate

def _sim_detach_last() -> Fields:
    lab = sim_lab()
    res = lab.drbd[RES]
    out = sim_answer("peer_detach", sim_call(res.detach, SECONDARY))
    out |= sim_answer("detach", sim_call(res.detach, PRIMARY))
    out["disk_after_detach"] = Observed(value=res.status()[PRIMARY].disk)
    out |= sim_answer("detach_force", sim_call(res.detach, PRIMARY, force=True))
    out["disk_after_force"] = Observed(value=res.status()[PRIMARY].disk)
    return out


def _vm_detach_last() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    out = answer("peer_detach", *run(lab, SECONDARY, f"drbdadm detach {RES}", timeout=60))
    wait("the peer is Diskless", lambda: proc_drbd(lab, PRIMARY).get("peer_disk")
         == "Diskless", 30)
    out |= answer("detach", *run(lab, PRIMARY, f"drbdadm detach {RES}", timeout=60))
    out["disk_after_detach"] = Observed(value=proc_drbd(lab, PRIMARY).get("disk"))
    out |= answer("detach_force",
                  *run(lab, PRIMARY, f"drbdadm detach --force {RES}", timeout=60))
    wait("the forced detach ends", lambda: proc_drbd(lab, PRIMARY).get("disk")
         in {"Diskless", "UpToDate"}, 30)
    out["disk_after_force"] = Observed(value=proc_drbd(lab, PRIMARY).get("disk"))
    return out


DETACH_LAST = Situation(
    name="drbd-detach-last-uptodate",
    exercises="Connected, the Secondary detached first: drbdadm detach on the Primary "
              "(the only UpToDate disk), then detach --force",
    tolerances=_exact("peer_detach_exit", "peer_detach_message", "detach_exit",
                      "detach_message", "disk_after_detach", "detach_force_exit",
                      "detach_force_message", "disk_after_force"),
    simulate=_sim_detach_last, recorders={"libvirt": _vm_detach_last})


# ---------------------------------------------------------------- graceful disconnect

def _sim_disconnect(who: str) -> Fields:
    lab = sim_lab()
    res = lab.drbd[RES]
    out = sim_answer("disconnect", sim_call(res.disconnect, who))
    lab.advance(lab.kernel.now + SETTLE_S)
    for host in (PRIMARY, SECONDARY):
        out |= sim_states(host, lab, host)
    return out


def _vm_disconnect(who: str) -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    out = answer("disconnect", *run(lab, who, f"drbdadm disconnect {RES}", timeout=60))
    other = SECONDARY if who == PRIMARY else PRIMARY
    wait("the peer sees the disconnect",
         lambda: proc_drbd(lab, other).get("connection") != "Connected", 30)
    for host in (PRIMARY, SECONDARY):
        out |= vm_states(host, lab, host)
    return out


def _disconnect_situation(who: str, role: str) -> Situation:
    fields = ("disconnect_exit", "disconnect_message",
              *state_names(PRIMARY), *state_names(SECONDARY))
    record: Callable[[], Fields] = lambda: _vm_disconnect(who)  # noqa: E731
    return Situation(
        name=f"drbd-disconnect-resource-only-{role}",
        exercises=f"fencing resource-only, Connected UpToDate/UpToDate: drbdadm disconnect "
                  f"on the {role} ({who}); both nodes' states afterwards",
        tolerances=_exact(*fields), simulate=lambda: _sim_disconnect(who),
        recorders={"libvirt": record})


DISCONNECT_ON_PRIMARY = _disconnect_situation(PRIMARY, "primary")
DISCONNECT_ON_SECONDARY = _disconnect_situation(SECONDARY, "secondary")


# ---------------------------------------------------------------- diskless primary re-attach

WRITTEN_BLOCKS = 256  # 4 KiB each: 1 MiB written while Diskless
WRITE_WHILE_DISKLESS = (f"dd if=/dev/urandom of=/dev/drbd0 bs=4k count={WRITTEN_BLOCKS} "
                        f"seek={FREE_OFFSET_MIB * 256} oflag=direct")
MAX_STEPS = 1_000_000  # simulated events observed one by one after the attach


def _sim_reattach() -> Fields:
    lab = sim_lab()
    res = lab.drbd[RES]
    out = sim_answer("detach", sim_call(res.detach, PRIMARY))
    device = res.device(PRIMARY)
    labs.sim_run(lab, _sim_writes(device, WRITTEN_BLOCKS))
    before = _seen(lab)  # events2 prints changes only: the state before is not one
    out |= sim_answer("attach", sim_call(res.attach, PRIMARY))
    out |= _transitions([before, *_observe(lab, lab.kernel.now + 60.0)], since_first=True)
    out |= sim_states("final", lab, PRIMARY)
    return out


def _sim_writes(device: Any, count: int) -> Generator[simpy.Event, Any, None]:
    for block in range(count):
        yield from sim_wait(device.write(block, "while-diskless"))


def _seen(lab: SimLab) -> tuple[str, str | None, str | None]:
    st = lab.drbd[RES].status()[PRIMARY]
    return PRIMARY, st.disk, st.connection


def _observe(lab: SimLab, until: float) -> list[tuple[str, str | None, str | None]]:
    """The Primary's disk and connection state after every simulated event up to `until`
    (what events2 would print, short of changes made and undone within one event)."""
    env, seen = lab.kernel.env, [_seen(lab)]
    for _ in range(MAX_STEPS):
        if env.peek() > until:
            break
        env.step()
        now = _seen(lab)
        if now != seen[-1]:
            seen.append(now)
    lab.advance(until)
    return seen


def _transitions(changes: list[tuple[str, str | None, str | None]],
                 since_first: bool = False) -> Fields:
    """The Primary's disk states and connection states after the attach, in order
    (`since_first`: the first entry is the state before, left out)."""
    skip = 1 if since_first else 0
    disks = _dedup([d for node, d, _c in changes if node == PRIMARY and d])[skip:]
    conns = _dedup([c for node, _d, c in changes if node == PRIMARY and c])[skip:]
    return {"disk_states": Observed(value=" > ".join(disks) or None),
            "connection_states": Observed(value=" > ".join(conns) or None)}


def _dedup(items: list[str]) -> list[str]:
    return [x for i, x in enumerate(items) if i == 0 or items[i - 1] != x]


EVENTS = "/run/sd-events2.log"


def _vm_reattach() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    out = answer("detach", *run(lab, PRIMARY, f"drbdadm detach {RES}", timeout=60))
    wait("Diskless", lambda: proc_drbd(lab, PRIMARY).get("disk") == "Diskless", 30)
    must(lab, PRIMARY, WRITE_WHILE_DISKLESS, timeout=90)
    must(lab, PRIMARY, f"drbdsetup events2 {RES} > {EVENTS} 2>&1 < /dev/null & "
                       f"echo $! > {EVENTS}.pid; sleep 1")
    out |= answer("attach", *run(lab, PRIMARY, f"drbdadm attach {RES}", timeout=90))
    wait("the re-attached Primary settles", lambda: _settled(proc_drbd(lab, PRIMARY)), 120)
    log = must(lab, PRIMARY, f"kill $(cat {EVENTS}.pid); cat {EVENTS}")
    out |= _transitions(_events2_changes(log))
    out |= vm_states("final", lab, PRIMARY)
    return out


def _settled(seen: dict[str, str]) -> bool:
    return seen.get("connection") in {"Connected", "StandAlone", "WFConnection"} \
        and seen.get("disk") in {"UpToDate", "Diskless", "Failed", "Outdated"}


def _events2_changes(log: str) -> list[tuple[str, str | None, str | None]]:
    """`change device ... disk:X` and `change connection ... connection:X` /
    `change peer-device ... replication:X` lines of drbdsetup events2, as the
    simulator's (node, disk, connection) changes (8.4's cs: names the replication
    state once connected, e.g. SyncTarget)."""
    changes: list[tuple[str, str | None, str | None]] = []
    for line in log.splitlines():
        words = dict(w.split(":", 1) for w in line.split() if ":" in w)
        if not line.startswith("change "):
            continue
        if "disk" in words and line.startswith("change device"):
            changes.append((PRIMARY, words["disk"], None))
        elif "replication" in words:
            cs = words["replication"]
            changes.append((PRIMARY, None, "Connected" if cs == "Established" else cs))
        elif "connection" in words and line.startswith("change connection"):
            changes.append((PRIMARY, None, words["connection"]))
    return changes


REATTACH = Situation(
    name="drbd-diskless-primary-reattach",
    exercises="a Connected Primary detaches, writes 1 MiB while Diskless (to the peer), "
              "re-attaches its own disk: the states it goes through and ends in",
    tolerances=_exact("detach_exit", "detach_message", "attach_exit", "attach_message",
                      "disk_states", "connection_states", *state_names("final")),
    simulate=_sim_reattach, recorders={"libvirt": _vm_reattach},
    not_modelled=dict.fromkeys(("disk_states", "connection_states"), (
        "the transient states of the attach and the sync handshake (Attaching, "
        "Negotiating; WFBitMapT, WFSyncUUID): the simulator's handshake takes no time, so "
        "it goes straight to Inconsistent/SyncTarget; where it ends agrees")))

SITUATIONS = (HELD_OPEN, DETACH_LAST, DISCONNECT_ON_PRIMARY, DISCONNECT_ON_SECONDARY,
              REATTACH)
