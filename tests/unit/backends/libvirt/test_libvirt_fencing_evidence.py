"""The libvirt lab's guest events can be trusted by the fencing check, however slow the
guests: issue 12's `fencing_order: inst-a started on cmp2 ... before cmp1 was confirmed
fenced` under load.

Real libvirt code on the in-process `test:///default` driver (power cuts, fences and
power-ons are real libvirt calls there). That driver has no guest agent, so a stand-in
answers the workload commands, as slowly as a starved TCG guest does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

libvirt = pytest.importorskip("libvirt")

from libvirt_support import failover_lab  # noqa: E402

from stackdrill.backends.libvirt.agent import ShellResult  # noqa: E402
from stackdrill.backends.libvirt.lab import LibvirtLab  # noqa: E402
from stackdrill.checks import fencing_order  # noqa: E402
from stackdrill.faults import HostCrash  # noqa: E402

VOLUMES = {"vol1": "/dev/vg0/vol1"}


class SlowAgentLab(LibvirtLab):
    """A test-driver lab whose guests answer every command, each after `agent_s` seconds
    (a guest agent on a loaded runner); commands are recorded, never run."""

    agent_s = 0.0

    def run(self, host: str, command: str, timeout: float = 60.0) -> ShellResult:
        time.sleep(self.agent_s)
        return ShellResult(command, 0, "", "")


@pytest.fixture
def lab() -> Iterator[SlowAgentLab]:
    with failover_lab(SlowAgentLab, "fence") as created:
        yield created


def test_a_returning_host_does_not_void_the_proof_that_its_old_copy_died(
        lab: SlowAgentLab) -> None:
    """vm1 dies with alice's power cut; alice powers on again before the (slow) recovery
    starts vm1 on bob, and does not resume it. The copy on alice is provably gone: it died
    with the power and never started there again."""
    lab.compute.start_now("vm1", "alice", VOLUMES)
    lab.inject(HostCrash(host="alice"))
    lab.heal(HostCrash(host="alice"))  # power back: the fence alone proves nothing now
    lab.drivers.compute.start("vm1", "bob", VOLUMES).result(timeout=10)
    result = fencing_order(lab.events())
    assert result.ok, result.detail
    assert any("hv/alice stop" in line and "why=host-off" in line for line in lab.trace())


def test_a_returning_host_that_resumes_the_old_copy_is_still_caught(
        lab: SlowAgentLab) -> None:
    """The same, but alice's compute service resumes vm1 at boot: then vm1 runs twice."""
    lab.compute.start_now("vm1", "alice", VOLUMES)
    lab.inject(HostCrash(host="alice"))
    lab.heal(HostCrash(host="alice"))
    lab.compute.boot("alice")  # no boot hook: it resumes what it had defined
    lab.drivers.compute.start("vm1", "bob", VOLUMES).result(timeout=10)
    result = fencing_order(lab.events())
    assert not result.ok
    assert "vm1 started on bob" in result.detail and "alice" in result.detail


def test_a_start_sent_before_the_fence_is_caught_however_slow_the_agent(
        lab: SlowAgentLab) -> None:
    """A start on bob is requested while alice still runs vm1; the agent takes a second to
    answer and alice is fenced meanwhile. The new copy may have run beside the old one, so
    the start counts from its request, not from the agent's late answer."""
    lab.compute.start_now("vm1", "alice", VOLUMES)
    lab.agent_s = 1.0
    starting = lab.drivers.compute.start("vm1", "bob", VOLUMES)
    time.sleep(0.3)
    lab.drivers.power.power_off("alice").result(timeout=10)
    starting.result(timeout=10)
    result = fencing_order(lab.events())
    assert not result.ok
    assert "vm1 started on bob" in result.detail


def test_a_start_sent_after_the_fence_passes_however_slow_the_agent(
        lab: SlowAgentLab) -> None:
    lab.compute.start_now("vm1", "alice", VOLUMES)
    lab.agent_s = 0.5
    lab.drivers.power.power_off("alice").result(timeout=10)
    lab.drivers.compute.start("vm1", "bob", VOLUMES).result(timeout=10)
    assert fencing_order(lab.events()).ok
