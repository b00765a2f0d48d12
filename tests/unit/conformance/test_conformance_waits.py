"""The recorders' waits on real guests, with the guest's answers stood in by plain callables:
a wait that times out is the RuntimeError the situations catch to add what the guests said,
and an iSCSI write's end is seen as soon as its result is there."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

import pytest

from stackdrill.conformance import drbd_lab
from stackdrill.conformance.situations import iscsi
from stackdrill.waiting import WaitTimeout

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab


def test_a_recorders_wait_returns_once_the_condition_holds() -> None:
    answers = iter([False, False, True])
    t0 = time.monotonic()
    drbd_lab.wait("r0 syncs", lambda: next(answers), 30)
    assert 0.9 <= time.monotonic() - t0 < 10.0  # two looks 0.5 s apart, not the 30 s


def test_a_recorders_wait_that_times_out_is_a_runtime_error_naming_it() -> None:
    with pytest.raises(RuntimeError, match=r"^r0 syncs: not within 0\.3 s$"):
        drbd_lab.wait("r0 syncs", lambda: False, 0.3)


def test_an_iscsi_write_is_seen_ending_with_its_exit_status() -> None:
    said = iter(["", "", "1\n"])
    no_lab = cast("LibvirtLab", None)  # the result is read through `read` alone
    ok, seen = iscsi._vm_result(no_lab, lambda: next(said))
    assert ok is False and seen <= time.monotonic()
    assert iscsi._vm_result(no_lab, lambda: "0\n")[0] is True


def test_an_iscsi_write_that_never_ends_is_an_error_within_its_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iscsi, "WRITE_LIMIT_S", 0.4)
    with pytest.raises(WaitTimeout, match=r"the end of an iSCSI write on b: not within 0\.4 s"):
        iscsi._vm_result(cast("LibvirtLab", None), lambda: "")
