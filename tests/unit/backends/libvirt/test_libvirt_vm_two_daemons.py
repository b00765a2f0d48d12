"""Real guests on two libvirt daemons (this machine's and scripts/second-libvirtd.sh's hv2):
traffic crosses VXLAN between the daemons' bridges, and bridge faults hold on both sides.

Opt-in like the other real-guest tests (STACKDRILL_VM_TESTS=1, root; ~1 min): it starts
hv2 when it does not run and stops it again. Pings go through the guest agent."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.vm

libvirt = pytest.importorskip("libvirt")

from libvirt_support import ROOT, require_vm, unique_lab  # noqa: E402

from stackdrill.backends.libvirt import LibvirtBackend  # noqa: E402
from stackdrill.backends.libvirt.lab import LibvirtLab  # noqa: E402
from stackdrill.backends.libvirt.records import local_daemons  # noqa: E402
from stackdrill.faults import Cut, Partition  # noqa: E402
from stackdrill.topology import load_topology  # noqa: E402

SCRIPT = ROOT / "scripts" / "second-libvirtd.sh"


@pytest.fixture(scope="module")
def two_daemon_lab() -> Iterator[LibvirtLab]:
    require_vm(1)
    if os.geteuid() != 0:
        pytest.skip("a second libvirt daemon needs root")
    running = any("/hv/hv2/" in uri for uri in local_daemons())
    if not running:
        subprocess.run(["bash", str(SCRIPT), "start", "hv2"], check=True, timeout=120)
    try:
        lab = LibvirtBackend(provision=False).create(
            load_topology(ROOT / "lab" / "topologies" / "drbd-pair-two-hv.yaml"),
            lab_name=unique_lab("hvvm"), seed=1)
        try:
            yield lab
        finally:
            lab.destroy()
    finally:
        if not running:
            subprocess.run(["bash", str(SCRIPT), "stop", "hv2"], check=True, timeout=120)


def reaches(lab: LibvirtLab, src: str, dst: str) -> bool:
    out = lab.run(src, f"ping -c2 -W1 -i0.3 {dst} >/dev/null && echo ok || echo lost")
    return out.stdout.strip() == "ok"


def test_guests_on_two_daemons_share_each_network(two_daemon_lab: LibvirtLab) -> None:
    lab = two_daemon_lab
    assert lab.nodes["cmp2"].uri != lab.nodes["cmp1"].uri
    assert reaches(lab, "cmp1", "10.81.0.12") and reaches(lab, "ctl1", "10.71.0.12")
    # full-size frames of the 1500-byte networks cross (VXLAN on the 9000-byte underlay)
    assert lab.run("cmp1", "ping -c1 -W2 -M do -s 1472 10.81.0.12").rc == 0


def test_a_partition_across_daemons_holds_and_heals(two_daemon_lab: LibvirtLab) -> None:
    lab = two_daemon_lab
    fault = Partition(groups=(("cmp1",), ("cmp2",)), network="repl")
    lab.inject(fault)
    try:
        assert not reaches(lab, "cmp1", "10.81.0.12")
        assert not reaches(lab, "cmp2", "10.81.0.11")
        assert reaches(lab, "cmp1", "10.71.0.12")  # the other network is untouched
    finally:
        lab.heal(fault)
    assert reaches(lab, "cmp1", "10.81.0.12")


def test_a_one_way_cut_across_daemons_drops_only_that_direction(
        two_daemon_lab: LibvirtLab) -> None:
    lab = two_daemon_lab
    fault = Cut(pairs=(("ctl1", "cmp2"),), network="mgmt", one_way=True)
    lab.inject(fault)
    try:
        assert not reaches(lab, "ctl1", "10.71.0.12")
        assert reaches(lab, "cmp1", "10.71.0.12")
    finally:
        lab.heal(fault)
    assert reaches(lab, "ctl1", "10.71.0.12")
