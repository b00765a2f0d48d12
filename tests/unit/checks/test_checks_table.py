"""Every expectation a drill can declare has one checker, and running them through the
table keeps the checklist's rule: a declared check that cannot run fails, saying why."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

from stackdrill.api import LvmView, Observation, WriteOp
from stackdrill.checks import CHECKERS, CheckContext, Evidence, run_checks
from stackdrill.checks.expectations import (
    ExpectAckedWrites,
    Expectation,
    ExpectLvm,
    ExpectNoIoErrors,
    check_names,
)
from stackdrill.topology import load_topology

TOPOLOGY = load_topology(Path(__file__).resolve().parents[3] / "lab" / "topologies"
                         / "drbd-pair-overlay.yaml")


def write(seq: int, outcome: str = "ok") -> WriteOp:
    return WriteOp(instance="inst-a", volume="vol-a", incarnation=1, seq=seq, checksum="c",
                   invoked=float(seq), completed=seq + 0.1, outcome=outcome, host="cmp1")


def context(lvm: list[LvmView], history: tuple[WriteOp, ...] = (),
            backend: str = "netns") -> CheckContext:
    observation = Observation(time=60.0, running={"inst-a": ["cmp1"], "inst-b": ["cmp2"]},
                              power={}, drbd={}, lvm=lvm, quorum={})
    evidence = Evidence(observation=observation, history=history, stored={}, events=(),
                        commands={}, predicted_lost_writes=None)
    return CheckContext(evidence=evidence, topology=TOPOLOGY, backend=backend)


def test_every_expectation_a_drill_can_declare_has_a_checker() -> None:
    union = get_args(get_args(Expectation)[0])
    assert set(union) == set(CHECKERS)


def test_names_say_what_each_check_is_about_and_stay_unique() -> None:
    expectations = (ExpectLvm(vg="vg-a"), ExpectLvm(vg="vg-b"), ExpectLvm(vg="vg-a"),
                    ExpectNoIoErrors())
    assert check_names(expectations) == ["lvm_consistent[vg-a]", "lvm_consistent[vg-b]",
                                         "lvm_consistent[vg-a]#2", "no_io_errors"]


def test_a_volume_group_nobody_could_read_never_ran() -> None:
    """vg-b's hosts answered no `vgs`: its check fails with the reason, vg-a's passes."""
    vg_a = LvmView("cmp1", "vg-a", 3, {"lv": [(0, 5)]}, {"lv": [(0, 5)]}, clustered=False)
    results = run_checks((ExpectLvm(vg="vg-a"), ExpectLvm(vg="vg-b")), context([vg_a]))
    assert [(r.name, r.ok, r.ran) for r in results] == [
        ("lvm_consistent[vg-a]", True, True), ("lvm_consistent[vg-b]", False, False)]
    assert results[1].detail == "never ran: no LVM view was observed on any host"


def test_a_prediction_the_backend_cannot_make_never_ran() -> None:
    [result] = run_checks((ExpectAckedWrites(predicted_lost=True),), context([]))
    assert (result.name, result.ok, result.ran) == ("acked_writes", False, False)
    assert result.detail == "never ran: backend 'netns' cannot predict lost writes"


def test_failed_writes_fail_no_io_errors_naming_them() -> None:
    history = (write(1), write(2, "fail"))
    [result] = run_checks((ExpectNoIoErrors(),), context([], history))
    assert not result.ok
    assert result.detail == "1 write(s) saw an I/O error: inst-a#2@2.1s"

