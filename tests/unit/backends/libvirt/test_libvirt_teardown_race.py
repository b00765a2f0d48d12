"""Teardown of a lab's storage pool when a volume is gone between the listing and its
deletion (seen on a loaded runner: a console file vanished, and the lab was reported as
not torn down although nothing of it was left but that listing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

libvirt = pytest.importorskip("libvirt")

from libvirt_support import TEST_URI, two_node, unique_lab  # noqa: E402

from stackdrill.backends.libvirt import LibvirtBackend  # noqa: E402
from stackdrill.backends.libvirt.naming import LabNames  # noqa: E402
from stackdrill.backends.libvirt.teardown import teardown_lab  # noqa: E402


@pytest.fixture
def conn() -> Iterator[libvirt.virConnect]:
    c = libvirt.open(TEST_URI)
    yield c
    c.close()


def test_a_volume_gone_since_the_listing_does_not_fail_the_teardown(
        conn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch) -> None:
    name = unique_lab("race")
    lab = LibvirtBackend(TEST_URI, lab_root=Path("/stackdrill-test")).create(
        two_node(), lab_name=name, seed=1)
    stale = conn.storagePoolLookupByName(LabNames(name).pool()).listAllVolumes()
    stale[0].delete(0)  # gone before the teardown deletes it
    real_lookup = libvirt.virConnect.storagePoolLookupByName

    def pool_listing_stale(self: libvirt.virConnect, pool_name: str) -> object:
        pool = real_lookup(self, pool_name)
        pool.listAllVolumes = lambda flags=0: stale  # what the listing said a moment ago
        return pool

    monkeypatch.setattr(libvirt.virConnect, "storagePoolLookupByName", pool_listing_stale)
    for host in lab.nodes:
        lab.domain(host).destroy()
    report = teardown_lab(conn, name)
    assert report.problems == [], report.problems
    assert f"pool {LabNames(name).pool()}" in report.removed
