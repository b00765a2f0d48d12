"""drbd_state: expectations over `drbdadm status` fields (DRBD 8.4 names)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from stackdrill.api import DrbdNodeStatus, Observation
from stackdrill.checks import DrbdExpectation, drbd_state


def obs(drbd: dict[str, dict[str, DrbdNodeStatus]]) -> Observation:
    return Observation(time=1.0, running={}, power={}, drbd=drbd, lvm=[], quorum={})


HEALTHY = {
    "n1": DrbdNodeStatus(role="Primary", disk="UpToDate", connection="Connected"),
    "n2": DrbdNodeStatus(role="Secondary", disk="UpToDate", connection="Connected"),
}


def test_expected_roles_and_disks_pass() -> None:
    exps = [
        DrbdExpectation(resource="r0", fields={"disk": "UpToDate", "connection": "Connected"}),
        DrbdExpectation(resource="r0", host="n1", fields={"role": "Primary"}, split_brain=False),
    ]
    assert drbd_state(obs({"r0": HEALTHY}), exps).ok


def test_diskless_primary_after_detach() -> None:
    """on-io-error detach: the primary goes Diskless and keeps serving from its peer."""
    state = {"r0": {**HEALTHY, "n1": replace(HEALTHY["n1"], disk="Diskless")}}
    exp = DrbdExpectation(resource="r0", host="n1", fields={"disk": "UpToDate"})
    r = drbd_state(obs(state), [exp])
    assert not r.ok and "r0@n1: disk is Diskless, expected UpToDate" in r.detail
    ok = DrbdExpectation(resource="r0", host="n1", fields={"disk": ("Diskless", "UpToDate")})
    assert drbd_state(obs(state), [ok]).ok


def test_split_brain_expectations() -> None:
    """After a partition with two primaries writing, reconnect must detect split brain;
    with fencing resource-and-stonith none may happen."""
    sb = {h: replace(f, connection="StandAlone", split_brain=True) for h, f in HEALTHY.items()}
    assert drbd_state(obs({"r0": sb}), [DrbdExpectation(resource="r0", split_brain=True)]).ok
    r = drbd_state(obs({"r0": sb}), [DrbdExpectation(resource="r0", split_brain=False)])
    assert not r.ok and "split brain detected on n1, n2" in r.detail
    none = drbd_state(obs({"r0": HEALTHY}), [DrbdExpectation(resource="r0", split_brain=True)])
    assert not none.ok


def test_unobserved_resource_never_ran() -> None:
    r = drbd_state(obs({}), [DrbdExpectation(resource="r0", fields={"role": "Primary"})])
    assert not r.ran and not r.ok and "r0" in r.detail
    assert not drbd_state(obs({"r0": HEALTHY}), []).ok


def test_auto_resolved_split_brain_counts_from_the_log() -> None:
    """after-sb-0pri discard-younger-primary resolves the split brain and reconnects:
    the final status is Connected/UpToDate, but DRBD did detect one (kernel log)."""
    exp = [DrbdExpectation(resource="r0", split_brain=True)]
    assert not drbd_state(obs({"r0": HEALTHY}), exp).ok
    assert drbd_state(obs({"r0": HEALTHY}), exp, detected={"r0": ["n2"]}).ok
    extra = Observation(
        time=1.0,
        running={},
        power={},
        drbd={"r0": HEALTHY},
        lvm=[],
        quorum={},
        split_brains={"r0": ("n1",)},
    )
    assert drbd_state(extra, exp).ok
    assert not drbd_state(extra, [DrbdExpectation(resource="r0", split_brain=False)]).ok


def test_an_expectation_naming_an_unknown_status_field_is_refused() -> None:
    """A typo in a drill ('rol') must not silently expect nothing."""
    with pytest.raises(ValueError, match="unknown DRBD status field"):
        DrbdExpectation(resource="r0", fields={"rol": "Primary"})
