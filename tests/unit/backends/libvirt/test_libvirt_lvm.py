"""What a guest's LVM and device-mapper say, read into LvmViews (no guest needed: the
text is what lvm2 2.03.16 and dmsetup print)."""

from __future__ import annotations

import pytest

from stackdrill.backends.libvirt.lvm import MARK, parse, share_of, split_dm_name
from stackdrill.checks.lvm import lvm_consistency

VGS = "  vg-shared 12 wz--n- 8192\n"
PVS = "  /dev/drbd0 vg-shared 2048\n"


def _text(lvs: str, dm: str) -> str:
    return f"{VGS}{MARK}\n{PVS}{MARK}\n{lvs}{MARK}\n{dm}"


@pytest.mark.parametrize(("name", "split"), [
    ("vg--shared-data--a3", ("vg-shared", "data-a3")),
    ("vg-lv", ("vg", "lv")),
    ("a---b", ("a-", "b")),
    ("vg--shared-lv--vm1-real", None),  # a snapshot origin's hidden layer
    ("luks-3f2a", ("luks", "3f2a")),  # not LVM's: the VG filter below drops it
    ("plain", None),
])
def test_device_mapper_names_split_as_libdm_reads_them(name: str, split: object) -> None:
    assert split_dm_name(name) == split


def test_an_lv_mapped_but_gone_from_the_metadata_is_seen_and_detected() -> None:
    """The lost change of a local-locking race: data-a3 stays mapped on this host over PE
    41 after the other host's metadata write dropped it. The view must keep it, or the
    LVM check has nothing to find."""
    lvs = ("  vg-shared lv-vm1 /dev/vg-shared/lv-vm1 /dev/drbd0:0-19\n"
           "  vg-shared data-b3 /dev/vg-shared/data-b3 /dev/drbd0:41-41\n")
    dm = ("vg--shared-lv--vm1: 0 163840 linear 147:0 2048\n"
          "vg--shared-data--a3: 0 8192 linear 147:0 337920\n"
          "luks-3f2a: 0 100 crypt aes-xts-plain64 0 8:1 4096\n")
    (view,) = parse("alice", _text(lvs, dm))
    assert view.active_lvs == {"lv-vm1": [(0, 20)], "data-a3": [(41, 1)]}
    assert "data-a3" not in view.metadata_lvs
    result = lvm_consistency([view])
    assert not result.ok and "data-a3 active on alice" in result.detail
    assert result.data["vgs"]["vg-shared"]["orphans"] == ["data-a3@alice"]


def test_sizes_scale_to_the_guests_vg_as_the_topology_shares_them() -> None:
    """two-node-clvm: r0 is 90 GB (23040 extents of 4 MiB), the capped guest VG has 63.
    lv-vm1 (10 GB, 2560 extents) gets its ninth, 7 extents, so the 40 one-extent LVs
    lvm-local-race creates fit beside the two volumes as they do in the topology (an equal
    third of the VG each left room for 23)."""
    assert share_of(2560, 23040, 63) == 7
    assert share_of(32, 23040, 63) == 1  # never below lvcreate's one extent
    assert 2 * share_of(2560, 23040, 63) + 40 * share_of(32, 23040, 63) <= 63
