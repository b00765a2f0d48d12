"""Checklist: a declared check that never ran fails the drill with the reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stackdrill.checks import Checklist, CheckResult


def test_unreached_phase_and_unobservable_fail() -> None:
    cl = Checklist([("exactly_once", "verify"), ("acked_writes", "verify"), "lvm_consistency"])
    cl.reached("fault")
    cl.cannot_observe("lvm_consistency", "device-mapper tables", backend="netns")
    results = {r.name: r for r in cl.finish()}
    assert results["exactly_once"].detail == "never ran: phase verify not reached"
    assert (
        results["lvm_consistency"].detail == "never ran: netns cannot observe device-mapper tables"
    )
    assert not any(r.ok or r.ran for r in results.values())
    assert not cl.ok()


def test_all_declared_ran() -> None:
    cl = Checklist(["a"])
    cl.run("a", CheckResult.passed, "x", "fine")
    assert [r.name for r in cl.finish()] == ["a"]
    assert cl.ok()


def test_crashing_checker_fails_instead_of_vanishing() -> None:
    def boom() -> CheckResult:
        raise KeyError("vm9")

    cl = Checklist(["a"])
    r = cl.run("a", boom)
    assert not r.ok and "KeyError" in r.detail
    assert not cl.ok()


def test_empty_checklist_is_not_a_pass() -> None:
    assert not Checklist().ok()


def test_not_run_cannot_be_ok() -> None:
    with pytest.raises(ValidationError):
        CheckResult(name="a", ok=True, ran=False)
