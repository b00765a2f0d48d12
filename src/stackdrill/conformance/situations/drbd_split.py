"""DRBD 8.4 split brain: both sides wrote while apart, then reconnect under an after-sb
policy (drbd_receiver.c drbd_sync_handshake, drbd_uuid_compare rule 90, and
drbd_asb_recover_0p/1p/2p), and the manual resolution where the policy leaves it
unresolved (`drbdadm connect --discard-my-data` on the victim, `drbdadm connect` on the
survivor).

Every situation starts Connected, UpToDate/UpToDate, `a` Primary; the policy variant is
applied with `fencing dont-care` (under resource-only a disconnected Secondary could not be
promoted: that is what fencing is for). The split: both disconnect gracefully while `a` is
Primary (so `a` starts a new data generation with its Primary bit in the bitmap UUID),
`a` writes marker blocks, demotes unless it stays Primary; `b` is promoted (a younger
generation), writes its markers, demotes unless it stays Primary; both connect. Observed:
each side's state after the reconnect, the kernel's "Split-Brain detected ..." line on
each side, who became SyncTarget and how many bits it synced, final states, and whose
marker each backing disk holds at the first marker block after the resync.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
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
    sim_lab,
    topology,
)
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation
from stackdrill.conformance.situations.drbd_common import sim_states, sim_wait, state_names

if TYPE_CHECKING:
    from stackdrill.backends.sim.lab import SimLab

FIRST_BLOCK = FREE_OFFSET_MIB * 256  # 4 KiB blocks: past the PV label and the LV
BASE_BLOCKS = 8  # written while Connected, so a side that writes nothing shows "base"
SETTLE_S = 10.0  # the handshake and a resync of a few blocks end well within this
MARKER = "sd-marker-"
SB_LINE = re.compile(r"(Split-Brain detected[^\n]*\S)")
RESYNC_LINE = re.compile(r"Began resync as (SyncSource|SyncTarget) \(will sync \d+ KB "
                         r"\[(\d+) bits set\]\)")


@dataclass(frozen=True)
class Split:
    """One split brain: the policy variant, how many blocks each side writes while apart,
    and who is still Primary when they reconnect."""

    name: str
    exercises: str
    policy: Mapping[str, str]
    a_blocks: int
    b_blocks: int
    a_primary: bool = False  # a is still Primary at the reconnect
    b_primary: bool = False
    manual: bool = False  # the policy leaves it unresolved: resolve by discarding b
    not_modelled: Mapping[str, str] = field(default_factory=dict)

    @property
    def resource(self) -> dict[str, str]:
        return {"fencing": "dont-care", **self.policy}

    def field_names(self) -> tuple[str, ...]:
        names = [*state_names("reconnect_a"), *state_names("reconnect_b"),
                 "reconnect_split_brain_a", "reconnect_split_brain_b"]
        if self.manual:
            names += ["manual_split_brain_a", "manual_split_brain_b"]
        return (*names, "sync_target", "resync_bits", *state_names("final_a"),
                *state_names("final_b"), "data_a", "data_b")


def marker(host: str) -> str:
    return f"{MARKER}{host}"


def whose(data: object) -> str:
    """`a`, `b` or `base` for a block that holds a marker; `other` for anything else."""
    text = str(data) if data is not None else ""
    return text[len(MARKER):] if text.startswith(MARKER) else "other"


def split_brain_line(text: str) -> str | None:
    found = SB_LINE.findall(text)
    return " | ".join(found) if found else None


def resync_seen(logs: Mapping[str, str]) -> tuple[str | None, int | None]:
    """Who logged "Began resync as SyncTarget", and the bits it said it would sync."""
    for host, text in sorted(logs.items()):
        for role, bits in RESYNC_LINE.findall(text):
            if role == "SyncTarget":
                return host, int(bits)
    return None, None


# ---------------------------------------------------------------- simulator

def sim_split_brain_lines(lab: SimLab, since: int, host: str) -> str | None:
    """The kernel line drbd_sync_handshake prints on `host` for the split brains the
    simulator noted after notice number `since`."""
    res = lab.drbd[RES]
    lines = []
    for notice in res.events()[since:]:
        if notice.kind != "split-brain":
            continue
        if not notice.get("resolved"):
            lines.append("Split-Brain detected but unresolved, dropping connection!")
            continue
        side = "this" if notice.get("survivor") == host else "peer"
        if notice.get("policy") == "discard-my-data":
            lines.append(f"Split-Brain detected, manually solved. Sync from {side} node")
        else:
            lines.append(f"Split-Brain detected, {notice.get('primaries')} primaries, "
                         f"automatically solved. Sync from {side} node")
    return " | ".join(lines) if lines else None


def _sim_writes(lab: SimLab, host: str, count: int, data: str,
                ) -> Generator[simpy.Event, Any, None]:
    device = lab.drbd[RES].device(host)
    for block in range(count):
        yield device.write(FIRST_BLOCK + block, data)


def _sim_role(event: simpy.Event) -> Generator[simpy.Event, Any, None]:
    refused = yield from sim_wait(event)
    if refused is not None:
        raise RuntimeError(f"the simulated split failed: {refused}")


def _sim_split(lab: SimLab, plan: Split) -> Generator[simpy.Event, Any, None]:
    res = lab.drbd[RES]
    yield lab.lvm_hosts[PRIMARY].deactivate(VG, LV)  # the guests' reset leaves it inactive
    yield from _sim_writes(lab, PRIMARY, BASE_BLOCKS, marker("base"))
    res.disconnect(PRIMARY)
    res.disconnect(SECONDARY)
    yield from _sim_writes(lab, PRIMARY, plan.a_blocks, marker(PRIMARY))
    if not plan.a_primary:
        yield from _sim_role(res.demote(PRIMARY))
    yield from _sim_role(res.promote(SECONDARY))
    yield from _sim_writes(lab, SECONDARY, plan.b_blocks, marker(SECONDARY))
    if not plan.b_primary:
        yield from _sim_role(res.demote(SECONDARY))


def _sim_sb_fields(lab: SimLab, prefix: str, since: int) -> Fields:
    return {f"{prefix}_split_brain_{h}": Observed(value=sim_split_brain_lines(lab, since, h))
            for h in (PRIMARY, SECONDARY)}


def simulate(plan: Split) -> Fields:
    lab = sim_lab(topology(resource=plan.resource))
    res = lab.drbd[RES]
    labs.sim_run(lab, _sim_split(lab, plan))
    since = len(res.events())
    res.connect(PRIMARY)
    res.connect(SECONDARY)
    lab.advance(lab.kernel.now + SETTLE_S)
    out = sim_states("reconnect_a", lab, PRIMARY) | sim_states("reconnect_b", lab, SECONDARY)
    out |= _sim_sb_fields(lab, "reconnect", since)
    if plan.manual:
        manual_since = len(res.events())
        for host in (PRIMARY, SECONDARY):
            res.disconnect(host)
        if plan.b_primary:
            labs.sim_run(lab, _sim_role(res.demote(SECONDARY)))
        res.connect(SECONDARY, discard_my_data=True)
        res.connect(PRIMARY)
        lab.advance(lab.kernel.now + SETTLE_S)
        out |= _sim_sb_fields(lab, "manual", manual_since)
    started = [n for n in res.events()[since:] if n.kind == "resync-started"]
    target = str(started[-1].get("target")) if started else None
    kb = started[-1].get("kb") if started else None
    out["sync_target"] = Observed(value=target)
    out["resync_bits"] = Observed(value=int(kb) // 4 if isinstance(kb, int) else None)
    out |= sim_states("final_a", lab, PRIMARY) | sim_states("final_b", lab, SECONDARY)
    for host in (PRIMARY, SECONDARY):
        out[f"data_{host}"] = Observed(value=whose(res.nodes[host].disk.peek(FIRST_BLOCK)))
    return out


# ---------------------------------------------------------------- the situations

def _record(plan: Split) -> Fields:
    """The guests' side (drbd_split_vm imports this module's helpers)."""
    from stackdrill.conformance.situations import drbd_split_vm

    return drbd_split_vm.record(plan)


def situation(plan: Split) -> Situation:
    return Situation(
        name=plan.name, exercises=plan.exercises,
        tolerances=dict.fromkeys(plan.field_names(), EXACT),
        simulate=lambda: simulate(plan), recorders={"libvirt": lambda: _record(plan)},
        not_modelled=plan.not_modelled)


_0P = "after_sb_0pri"
PLANS = (
    Split("drbd-split-brain-0pri-disconnect-manual",
          "after-sb-0pri disconnect, both wrote one block while apart and demoted: the "
          "reconnect, then manual resolution discarding b's data", {}, 1, 1, manual=True),
    Split("drbd-split-brain-0pri-discard-younger-primary",
          "after-sb-0pri discard-younger-primary, both wrote one block (b was promoted "
          "after the split): who is discarded", {_0P: "discard-younger-primary"}, 1, 1),
    Split("drbd-split-brain-0pri-discard-older-primary",
          "after-sb-0pri discard-older-primary, both wrote one block (a was Primary at "
          "the split): who is discarded", {_0P: "discard-older-primary"}, 1, 1),
    Split("drbd-split-brain-0pri-discard-zero-changes",
          "after-sb-0pri discard-zero-changes, a wrote nothing after the split, b wrote "
          "two blocks: who is discarded", {_0P: "discard-zero-changes"}, 0, 2),
    Split("drbd-split-brain-0pri-discard-least-changes",
          "after-sb-0pri discard-least-changes, a wrote two blocks, b four: who is "
          "discarded", {_0P: "discard-least-changes"}, 2, 4),
    Split("drbd-split-brain-1pri-discard-secondary",
          "after-sb-1pri discard-secondary, a still Primary at the reconnect (wrote one "
          "block), b wrote two and demoted: who is discarded",
          {"after_sb_1pri": "discard-secondary"}, 1, 2, a_primary=True),
    Split("drbd-split-brain-1pri-consensus-refused",
          "after-sb-1pri consensus over after-sb-0pri discard-least-changes, a still "
          "Primary wrote one block, b wrote three: 0pri would discard the Primary, so "
          "consensus refuses; then manual resolution discarding b",
          {"after_sb_1pri": "consensus", _0P: "discard-least-changes"}, 1, 3,
          a_primary=True, manual=True),
    Split("drbd-split-brain-2pri-disconnect-manual",
          "after-sb-2pri disconnect, both Primary at the reconnect (b promoted while "
          "disconnected): the reconnect, then manual resolution (b demoted, discarded)",
          {}, 1, 1, a_primary=True, b_primary=True, manual=True),
    Split("drbd-split-brain-2pri-violently-as0p-rr-conflict",
          "after-sb-2pri violently-as0p over after-sb-0pri discard-zero-changes, both "
          "Primary at the reconnect, a wrote two blocks, b none: 0pri discards b, but "
          "rr-conflict disconnect refuses to make the Primary b SyncTarget (only b gives "
          "up); then manual resolution (b demoted, discarded)",
          {"after_sb_2pri": "violently-as0p", _0P: "discard-zero-changes"}, 2, 0,
          a_primary=True, b_primary=True, manual=True),
)
SITUATIONS = tuple(situation(plan) for plan in PLANS)
