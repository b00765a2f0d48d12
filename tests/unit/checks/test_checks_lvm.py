"""lvm_consistency: `vgs -o seqno`, `lvs` and `dmsetup table` on every host, compared."""

from __future__ import annotations

from stackdrill.api import LvmView
from stackdrill.checks import lvm_consistency

Segs = dict[str, list[tuple[int, int]]]


def view(host: str, seqno: int | None, meta: Segs, active: Segs, clustered: bool = True) -> LvmView:
    return LvmView(host, "vg0", seqno, meta, active, clustered)


def test_clustered_lvcreate_from_both_nodes_is_consistent() -> None:
    """Clustered locking serialises lvcreate on both nodes: one metadata, disjoint extents."""
    meta = {"a": [(0, 10)], "b": [(10, 5)]}
    r = lvm_consistency(
        [view("n1", 7, meta, {"a": [(0, 10)]}), view("n2", 7, meta, {"b": [(10, 5)]})]
    )
    assert r.ok, r.detail


def test_local_locking_damage_is_detected_and_named() -> None:
    """Local locking: n1 created `a` on PE 0-9 (seqno 6), n2 — with its cached seqno 5 —
    created `b` over the same PEs and wrote seqno 6 too; n1's `a` is still mapped there,
    though the on-disk metadata has lost it. One LV's writes land in the other."""
    r = lvm_consistency(
        [
            view("n1", 6, {"a": [(0, 10)]}, {"a": [(0, 10)]}, clustered=False),
            view("n2", 7, {"b": [(0, 10)]}, {"b": [(0, 10)]}, clustered=False),
        ]
    )
    assert not r.ok
    assert "a (dm@n1) and b (dm@n2) share PE 0-9" in r.detail
    assert "a active on n1 over PE 0-9 but absent from the metadata (seqno 7)" in r.detail
    assert "hosts disagree on metadata seqno (n1=6, n2=7)" in r.detail
    assert r.data["vgs"]["vg0"]["orphans"] == ["a@n1"]


def test_stale_mapping_after_remote_lvextend() -> None:
    """lvextend on n2 under local locking does not reload n1's table: n1 maps the old size."""
    meta = {"a": [(0, 20)]}
    r = lvm_consistency(
        [view("n1", 8, meta, {"a": [(0, 10)]}), view("n2", 8, meta, {"a": [(0, 20)]})]
    )
    assert not r.ok and "a on n1 maps PE 0-9, metadata (seqno 8) says 0-19" in r.detail


def test_metadata_itself_overlapping() -> None:
    """Metadata that gives two LVs one extent is corrupt whatever is mapped."""
    r = lvm_consistency([view("n1", 3, {"a": [(0, 4)], "b": [(3, 2)]}, {})])
    assert not r.ok and "share PE 3" in r.detail


def test_nothing_observed_never_ran() -> None:
    """A backend that cannot see LVM must not make the check pass."""
    r = lvm_consistency([])
    assert not r.ok and not r.ran
