"""Reopening a sim lab replays its record through the drill player and ends where the
commands that wrote it left the lab, even when a heal comes the instant a recovery ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.cli.labstore import LabRecord
from stackdrill.cli.session import LocalSession, open_session
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.faults.catalogue import HostCrash

TOPOLOGY = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "nova-drbd.yaml"


def test_a_reopened_lab_is_the_lab_the_commands_left(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    record = LabRecord(name="s1", backend="sim", topology=str(TOPOLOGY), seed=1)
    with open_session(record) as live:
        assert isinstance(live, LocalSession)
        live.apply(Step(at=0, id="f1", inject=HostCrash(host="cmp1")))
        live.wait(60)
        record = live.apply(Step(at=live.now(), recover=RecoverSpec()))
        assert live.last_recovery is not None and live.last_recovery.ok
        ended = live.now()
        record = live.apply(Step(at=ended, heal="f1"))  # right as the engine returned
        record = live.wait(15)
        trace, observed = live.core.lab.trace(), live.observe()
    assert [s.at for s in record.steps] == [0, 60, ended] and record.now == ended + 15
    with open_session(record) as replayed:
        assert isinstance(replayed, LocalSession)
        assert replayed.core.lab.trace() == trace
        assert replayed.observe() == observed
        assert replayed.last_recovery is None  # only a step applied now reports one
