"""A machine too slow for the drill's timing ends the run without a verdict, even when it
got slow after bring-up (issue 12: vm-host-failure under stress-ng FAILed with "inst-a and
inst-b were still being recovered when the 150 s drill ended" although the bring-up's
latency check had passed).

Real libvirt code on `test:///default`, with a stand-in for the guest agents that answers
as slowly as a starved TCG guest; the engine's timing is scaled down (a 1 s heartbeat
interval, a 1.5 s grace) so that a grace period passes in a test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

libvirt = pytest.importorskip("libvirt")

from libvirt_support import failover_lab  # noqa: E402

from stackdrill.api.commands import LvmCommand  # noqa: E402
from stackdrill.backends.libvirt.agent import GuestCommandError, ShellResult  # noqa: E402
from stackdrill.backends.libvirt.lab import LibvirtLab  # noqa: E402
from stackdrill.backends.libvirt.readiness import EngineTiming  # noqa: E402
from stackdrill.errors import InfrastructureError  # noqa: E402
from stackdrill.faults import HostCrash  # noqa: E402

FAST_ENGINE = EngineTiming(interval_s=1.0, grace_s=1.5)  # budget: 1 s / 4 calls = 0.25 s


class SlowAgentLab(LibvirtLab):
    """Guests whose agents answer each command after `agent_s` seconds with `rc`; a domain
    that is not running has no agent (fails at once, as libvirt does)."""

    agent_s = 0.0
    rc = 0

    def run(self, host: str, command: str, timeout: float = 60.0) -> ShellResult:
        try:
            running = bool(self.domain(host).isActive())
        except libvirt.libvirtError:
            running = False
        if not running:
            raise GuestCommandError(f"{host}: agent not connected", agent_unavailable=True)
        time.sleep(self.agent_s)
        return ShellResult(command, self.rc, "", "")


@pytest.fixture
def lab() -> Iterator[SlowAgentLab]:
    with failover_lab(SlowAgentLab, "slow") as created:
        created.compute.heartbeats.timing = FAST_ENGINE
        try:
            yield created
        finally:
            created.compute.heartbeats.stop(wait_s=10)


def drill_for(lab: SlowAgentLab, seconds: float) -> None:
    """The drill's middle: the monitor beats while the engine waits on the lab's clock."""
    lab.compute.heartbeats.start()
    lab.clock.sleep(seconds)


def test_agents_slow_for_a_whole_grace_period_end_the_drill_without_a_verdict(
        lab: SlowAgentLab) -> None:
    """Every round trip over budget, for longer than the engine's grace: the drill stops
    where the engine waits (no verdict), and its end says so again (a PASS would be the
    machine's as much as a FAIL)."""
    lab.agent_s = 0.4
    started = time.monotonic()
    with pytest.raises(InfrastructureError, match=r"^machine too slow: .*over 0\.25 s per "
                                                  r"call .*engine's 1\.5 s grace") as caught:
        drill_for(lab, 30)
    assert caught.value.exit_code == 3
    assert time.monotonic() - started < 20  # ended where it waited, not at the drill's end
    with pytest.raises(InfrastructureError, match=r"^machine too slow: "):
        lab.quiesce()
    assert any("machine-too-slow" in line for line in lab.trace())


def test_a_slow_spike_shorter_than_the_grace_is_absorbed(lab: SlowAgentLab) -> None:
    """One slow cycle is what the grace exists for: the drill ends normally, and its trace
    keeps the figures."""
    lab.agent_s = 0.4
    lab.compute.heartbeats.start()
    time.sleep(0.5)
    lab.agent_s = 0.0
    lab.clock.sleep(4)
    lab.quiesce()
    summary = [line for line in lab.trace() if "agent-latency-drill" in line]
    assert summary and "1over" in summary[0], summary


def test_beats_the_drill_made_fail_are_not_the_machines_slowness(lab: SlowAgentLab) -> None:
    """A crashed host's agent is gone, and a beat whose ping found no route (a partition
    makes it wait) failed in the guest: neither says the machine is slow."""
    lab.inject(HostCrash(host="alice"))
    lab.agent_s, lab.rc = 0.4, 1
    drill_for(lab, 4)
    lab.quiesce()


class DyingAgentLab(SlowAgentLab):
    """A command's agent reports the domain gone when it died while the command ran."""

    def run(self, host: str, command: str, timeout: float = 60.0) -> ShellResult:
        result = super().run(host, command, timeout)
        if not self.domain(host).isActive():
            raise GuestCommandError(f"{host}: agent guest-exec-status: domain is not running",
                                    agent_unavailable=True)
        return result


@pytest.fixture
def dying_lab() -> Iterator[DyingAgentLab]:
    with failover_lab(DyingAgentLab, "late") as created:
        yield created


REFRESH = LvmCommand(host="alice", op="refresh", vg="vg0")


def test_a_step_overtaken_by_the_drills_next_fault_is_no_verdict(
        dying_lab: DyingAgentLab) -> None:
    """vm-overlay under stress-ng: the probe scheduled at 5 s took 27 s and was cut off by
    the crash scheduled at 30 s, and the overlay check FAILed ("probe 'before-2' could not
    run: ... domain is not running"). The drill has the probe done before the crash; a
    machine that could not keep that order decides nothing."""
    lab, now = dying_lab, dying_lab.clock.now()
    lab.agent_s = 1.0
    lab.call_at(now, lambda: lab.execute(REFRESH, "before"), "before")
    lab.call_at(now + 0.3, lambda: lab.inject(HostCrash(host="alice")), "alice-dies")
    with pytest.raises(InfrastructureError, match=r"machine too slow: 'before', started at "
                                                  r".* was still running when alice lost "
                                                  r"power") as caught:
        lab.clock.sleep(10)
    assert caught.value.exit_code == 3


def test_a_step_after_the_fault_fails_as_the_drill_says(dying_lab: DyingAgentLab) -> None:
    """A command sent to a host the drill already crashed fails: that is the drill's doing
    and a result the checks judge."""
    lab = dying_lab
    lab.inject(HostCrash(host="alice"))
    lab.agent_s = 0.3
    lab.execute(REFRESH, "after")
    assert not lab.command_results()["after"].ok


def test_a_step_cut_off_by_the_engines_fence_is_judged(dying_lab: DyingAgentLab) -> None:
    """A fence is the recovery under test, not the drill's schedule: what it cuts off is a
    result (a wrong fence must still show up as a FAIL)."""
    lab, now = dying_lab, dying_lab.clock.now()
    lab.agent_s = 1.0
    lab.call_at(now, lambda: lab.execute(REFRESH, "before"), "before")
    time.sleep(0.3)
    lab.drivers.power.power_off("alice").result(timeout=10)
    lab.clock.sleep(2)
    assert not lab.command_results()["before"].ok
