"""Evidence read from a lab whose workloads still write (`stackdrill verify` on a kept
lab): a write invoked while the volumes are read must not make a record look foreign, and
a write acknowledged before the read must still be found."""

from __future__ import annotations

from pathlib import Path

from stackdrill.api import Lab, WriteOp
from stackdrill.backends import backend_class
from stackdrill.checks import Evidence
from stackdrill.checks.writes import acked_writes
from stackdrill.topology import load_topology

TOPOLOGY = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "drbd-pair.yaml"


class _StillWriting:
    """A real sim lab seen as a live lab is: its first history read does not yet hold the
    newest write, which is on the volume by the time the volume is read."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.reads = 0

    def history(self) -> list[WriteOp]:
        self.reads += 1
        full = self.lab.history()
        return full[:-1] if self.reads == 1 else full

    def __getattr__(self, name: str) -> object:
        return getattr(self.lab, name)


def _last_write_lands_during_the_read() -> tuple[Evidence, Evidence]:
    with backend_class("sim")().create(load_topology(TOPOLOGY), lab_name="live",
                                       seed=1) as lab:
        lab.clock.sleep(30)
        assert lab.history()[-1].outcome == "ok"
        live = Evidence.collect_live(_StillWriting(lab))  # type: ignore[arg-type]
        once = Evidence.collect(_StillWriting(lab))  # type: ignore[arg-type]
    return live, once


def test_a_write_invoked_during_the_read_explains_its_record_and_is_not_judged() -> None:
    live, once = _last_write_lands_during_the_read()
    newest = live.history[-1]
    assert newest.outcome == "info" and newest.completed is None
    assert all(op.outcome == "ok" for op in live.history[:-1])
    verdict = acked_writes(live.history, live.stored)
    assert verdict.ok, verdict.detail
    # read once, as after a drill's quiesce, the same lab shows a record no write explains
    assert "records no write explains" in acked_writes(once.history, once.stored).detail


def test_a_write_acknowledged_before_the_read_is_still_required() -> None:
    live, _ = _last_write_lands_during_the_read()
    volume = live.history[0].volume
    missing = {volume: {s: r for s, r in live.stored[volume].items()
                        if s != live.history[0].seq}}
    verdict = acked_writes(live.history, {**live.stored, **missing})
    assert not verdict.ok and "lost" in verdict.detail
