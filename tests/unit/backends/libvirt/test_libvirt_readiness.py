"""Bringing a guest up follows its progress, not a fixed wall time (issue 12: "guest agent
silent after 120 s" on a busy runner was a FAIL). A guest that stays silent, or never gets
there, is a lab that was not ready: LabNotReadyError (exit 3), never a check failure."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

libvirt = pytest.importorskip("libvirt")

from stackdrill.backends.libvirt.agent import GuestAgent  # noqa: E402
from stackdrill.backends.libvirt.readiness import (  # noqa: E402
    ProgressDeadline,
    agent_budget,
    check_latency,
    console_size,
)
from stackdrill.errors import InfrastructureError, LabNotReadyError  # noqa: E402


class Ticks:
    """A clock the test moves by hand (the deadline's own arithmetic, without waiting)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_guest_that_keeps_printing_is_waited_for_past_the_quiet_limit() -> None:
    clock, output = Ticks(), itertools.count()
    deadline = ProgressDeadline("cmp1 booting", lambda: next(output), quiet_s=60, hard_s=600,
                                now=clock)
    for _ in range(10):  # five minutes of boot, each 30 s printing something new
        clock.t += 30
        deadline.check()
    assert deadline.elapsed() == 300


def test_a_silent_guest_is_not_ready_after_the_quiet_limit() -> None:
    clock = Ticks()
    deadline = ProgressDeadline("cmp1 booting", lambda: 4096, quiet_s=60, hard_s=600, now=clock)
    clock.t = 59
    deadline.check()
    clock.t = 61
    with pytest.raises(LabNotReadyError, match=r"^lab not ready: cmp1 booting: no progress "
                                               r"for 61 s") as caught:
        deadline.check()
    assert isinstance(caught.value, InfrastructureError) and caught.value.exit_code == 3


def test_no_guest_is_waited_for_past_the_hard_limit() -> None:
    clock, output = Ticks(), itertools.count()
    deadline = ProgressDeadline("cmp1 booting", lambda: next(output), quiet_s=60, hard_s=600,
                                now=clock)
    clock.t = 601
    with pytest.raises(LabNotReadyError, match="hard limit of 600 s"):
        deadline.check()


def test_console_size_grows_with_the_file(tmp_path: Path) -> None:
    console = tmp_path / "cmp1.console"
    assert console_size(console) == 0
    console.write_text("[    0.000000] Linux version 6.1\n")
    assert console_size(console) > 0


def test_a_running_domain_whose_agent_never_answers_is_a_lab_not_ready() -> None:
    """Real libvirt (the test driver's running domain has no agent): the wait ends with
    LabNotReadyError once nothing progressed for the quiet limit, not before."""
    conn = libvirt.open("test:///default")
    try:
        agent = GuestAgent(conn.lookupByName("test"))
        started = time.monotonic()
        with pytest.raises(LabNotReadyError, match="no progress"):
            agent.wait_ready(ProgressDeadline("test booting", lambda: 0, quiet_s=1.5,
                                              hard_s=30))
        assert 1.5 <= time.monotonic() - started < 15
    finally:
        conn.close()


def test_a_runner_too_slow_for_the_heartbeat_interval_is_said_so_not_judged() -> None:
    """drbd-pair: two compute heartbeats and two DRBD replicas read per monitor cycle must
    fit in the engine's 10 s heartbeat interval: 2.5 s per agent round trip at most."""
    budget = agent_budget(calls_per_cycle=4, interval_s=10.0, beat_timeout_s=5.0)
    assert budget == 2.5
    check_latency(0.4, budget, "drbd-pair")
    with pytest.raises(InfrastructureError, match=r"^machine too slow: guest agent round "
                                                  r"trip 3\.1 s > budget 2\.5 s"):
        check_latency(3.1, budget, "drbd-pair")
    assert agent_budget(calls_per_cycle=1, interval_s=10.0, beat_timeout_s=5.0) == 5.0
