"""Clustered LVM in real guests: dual-primary DRBD, corosync + dlm + lvmlockd, a shared VG.

The seed's second story with today's tools (bookworm has no clvmd; lvmlockd is its successor).
Opt-in like test_libvirt_vm.py (STACKDRILL_VM_TESTS=1), ~2 min on 2 cores.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

pytestmark = pytest.mark.vm

libvirt = pytest.importorskip("libvirt")

from libvirt_support import clvm_pair, require_vm  # noqa: E402

from stackdrill.backends.libvirt import LibvirtBackend  # noqa: E402
from stackdrill.backends.libvirt.cluster import vg_attr  # noqa: E402
from stackdrill.backends.libvirt.lab import LibvirtLab  # noqa: E402

VG = "vg-shared"


@pytest.fixture(scope="module")
def clvm_lab() -> Iterator[LibvirtLab]:
    require_vm(2)
    start = time.monotonic()
    lab = LibvirtBackend(disk_cap_mb=64).create(clvm_pair(), lab_name=f"cl{os.getpid()}", seed=1)
    try:
        print(f"\nclvm lab up in {time.monotonic() - start:.1f} s: boot {lab.boot_seconds} "
              f"provision {lab.timings}")
        yield lab
    finally:
        lab.destroy()


def test_shared_vg_is_cluster_aware_on_both_primaries(clvm_lab: LibvirtLab) -> None:
    """`vgcreate --shared` under lvmlockd/dlm: vg_attr's 6th character is `s` (clvmd showed
    `c`) on every node, and both nodes are members of a quorate two_node cluster."""
    for host in ("alice", "bob"):
        assert vg_attr(clvm_lab, host, VG)[5] == "s"
    obs = clvm_lab.observe()
    assert {v.host for v in obs.lvm if v.vg == VG and v.clustered} == {"alice", "bob"}
    for host in ("alice", "bob"):
        assert obs.quorum["pair"][host].quorate
        assert obs.quorum["pair"][host].members == ("alice", "bob")
    assert {h: s.role for h, s in obs.drbd["r0"].items()} == {"alice": "Primary",
                                                                  "bob": "Primary"}


def test_metadata_change_on_one_node_is_seen_by_the_other(clvm_lab: LibvirtLab) -> None:
    """With cluster locking the VG metadata is serialised: an LV created on alice appears
    on bob with the same metadata sequence number and the same extents."""
    clvm_lab.run("alice", f"lvcreate -y -an -l 25%VG -n lv1 {VG}", timeout=120).check()
    views = {v.host: v for v in clvm_lab.observe().lvm if v.vg == VG}
    assert "lv1" in views["bob"].metadata_lvs
    assert views["alice"].metadata_seqno == views["bob"].metadata_seqno
    assert views["alice"].metadata_lvs == views["bob"].metadata_lvs


def test_exclusive_activation_is_refused_on_the_other_node(clvm_lab: LibvirtLab) -> None:
    """lvmlockd: an LV active exclusively on one host cannot be activated on another
    ("LV locked by other host"), and the mapping exists only where it is active."""
    clvm_lab.run("alice", f"lvchange -aey {VG}/lv1", timeout=60).check()
    refused = clvm_lab.run("bob", f"lvchange -aey {VG}/lv1", timeout=60)
    assert refused.rc != 0
    assert "locked by other host" in refused.stderr
    views = {v.host: v for v in clvm_lab.observe().lvm if v.vg == VG}
    assert "lv1" in views["alice"].active_lvs
    assert "lv1" not in views["bob"].active_lvs
    assert views["alice"].active_lvs["lv1"] == views["alice"].metadata_lvs["lv1"]
