"""The evidence a check reads: what a lab showed at one moment, collected once.

A finished drill collects it before teardown (a real lab's guests and consoles are gone
once it is destroyed), `stackdrill verify` collects it from a reopened lab; the checkers
read this value, never the lab. It lives in `checks`, not `api`: backends never build or
see it, it is the checkers' input, assembled from what the lab API offers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from stackdrill.api import CommandResult, Lab, Observation, StoredRecord, Traced, WriteOp
from stackdrill.api.events import trace_sha256
from stackdrill.errors import StackdrillError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evidence:
    """What the lab showed: its state, the workloads' write history, what each volume holds,
    its typed events and the operator commands' results."""

    observation: Observation
    history: tuple[WriteOp, ...]
    stored: dict[str, dict[int, StoredRecord]]  # volume -> seq -> record, as its primary has it
    events: tuple[Traced, ...]  # the lab's typed events: power, guests, DRBD, commands
    commands: dict[str, CommandResult]
    predicted_lost_writes: int | None  # only where the backend can predict (the simulator)

    @classmethod
    def collect(cls, lab: Lab) -> Evidence:
        """Of a lab whose workloads stopped (a drill quiesces them first). History before
        volumes: every write acknowledged in it is on the volume already."""
        observation = lab.observe()
        history = tuple(lab.history())
        stored = {v: _stored(lab, v) for v in sorted({op.volume for op in history})}
        return cls(observation, history, stored, tuple(lab.events()), lab.command_results(),
                   lab.predicted_lost_writes())

    @classmethod
    def collect_live(cls, lab: Lab) -> Evidence:
        """Of a lab whose workloads still write (`stackdrill verify` on a lab kept between
        commands): the history is read before and after the volumes. A write settled before
        the read began must be as it says; one that settled or was invoked while the
        volumes were read explains a record there, but its outcome is unknown ("info": it
        may or may not have landed in what was read), so it can be neither lost nor foreign.
        Where nothing writes meanwhile (the simulator) this is `collect`."""
        observation = lab.observe()
        before = lab.history()
        stored = {v: _stored(lab, v) for v in sorted({op.volume for op in before})}
        settled = {_op_key(op) for op in before if op.outcome != "info"}
        history = tuple(op if op.outcome == "info" or _op_key(op) in settled
                        else replace(op, outcome="info", completed=None)
                        for op in lab.history())
        return cls(observation, history, stored, tuple(lab.events()), lab.command_results(),
                   lab.predicted_lost_writes())

    @property
    def trace_sha256(self) -> str:
        return trace_sha256(self.events)


def _op_key(op: WriteOp) -> tuple[str, str, int, int]:
    return op.instance, op.volume, op.incarnation, op.seq


def _stored(lab: Lab, volume: str) -> dict[int, StoredRecord]:
    """A volume no replica can serve holds nothing anyone can read: every write acknowledged
    on it counts as lost, which is what its owner would find."""
    try:
        return lab.stored_records(volume)
    except StackdrillError as exc:
        log.warning("%s: cannot read back: %s", volume, exc)
        return {}
