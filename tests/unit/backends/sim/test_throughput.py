"""The iperf3 throughput probe on the simulator: figures from the link model where the
path carries full-size frames, nothing where the stream cannot open, and no figure (said
why) where what TCP would do is not modelled."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.api import CommandResult, LabOptions
from stackdrill.api.commands import ThroughputCommand
from stackdrill.backends.sim import SimBackend
from stackdrill.backends.sim.lab import SimLab
from stackdrill.checks.throughput import overlay_throughput
from stackdrill.faults import Fault, RateLimit, TunnelEndpointDown, UnderlayMtu
from stackdrill.topology import load_topology

TOPOLOGY = Path(__file__).resolve().parents[4] / "lab" / "topologies" / "nova-nbd.yaml"


def measured(*faults: Fault, src: str = "web2", dst: str = "web1") -> CommandResult:
    lab = SimBackend().create(load_topology(TOPOLOGY), lab_name="t", seed=1,
                              options=LabOptions(writers=frozenset()))
    assert isinstance(lab, SimLab)
    for fault in faults:
        lab.inject(fault)
    lab.execute(ThroughputCommand(src=src, dst=dst, label="t"), "t")
    lab.clock.sleep(30)
    return lab.command_results()["t"]


def test_a_rate_limited_link_gives_the_recorded_overlay_share() -> None:
    """tbf at 10 Mbit/s on the sender's tunnel link: 9.56 / 9.23 Mbit/s, as iperf3
    measured on the kernel (conformance: tbf-overlay-ratio, 9.57 / 9.24)."""
    result = measured(RateLimit(host="cmp2", network="tunnel", mbit=10))
    assert result.ok and result.throughput is not None
    assert result.throughput.underlay_mbit == pytest.approx(9.56, abs=0.01)
    assert result.throughput.overlay_mbit == pytest.approx(9.23, abs=0.01)
    assert (result.throughput.src_host, result.throughput.dst_host) == ("cmp2", "cmp1")
    assert result.finished - result.started == pytest.approx(6.0, abs=0.01)


def test_a_dead_tunnel_endpoint_carries_nothing_and_the_check_fails() -> None:
    result = measured(TunnelEndpointDown(host="cmp1", overlay="tenant"))
    assert not result.ok and result.throughput is not None
    assert result.throughput.overlay_mbit == 0.0 and result.throughput.underlay_mbit > 9
    check = overlay_throughput({"t": result}, ["t"], min_ratio=0.9, max_ratio=1.0)
    assert check.ran and not check.ok
    assert "web2->web1: overlay/underlay 0.000" in check.detail


def test_a_path_mtu_blackhole_gives_no_figure_and_the_check_does_not_run() -> None:
    """Small packets pass, full-size frames vanish: what TCP then does is not modelled."""
    result = measured(UnderlayMtu(host="cmp1", network="tunnel", mtu=1400))
    assert not result.ok and result.throughput is None
    assert "not modelled on the simulator" in result.detail
    check = overlay_throughput({"t": result}, ["t"], min_ratio=0.9, max_ratio=1.0)
    assert not check.ran and "gave no figure" in check.detail


def test_two_instances_on_one_host_have_no_underlay_between_them() -> None:
    result = measured(src="web1", dst="db1")  # both on cmp1
    assert not result.ok and result.throughput is None
    assert "share host cmp1" in result.detail
