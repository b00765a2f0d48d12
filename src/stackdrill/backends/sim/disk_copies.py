"""Whole copies of a backing disk, taken and written back behind DRBD's back.

`dd` of a detached DRBD backing disk takes its data and, with internal meta-data, DRBD's
meta data along (generation UUIDs, bitmap, flags); writing the copy back later restores
both, so the next attach presents an older generation to the peer, whose sync handshake
decides what happens to it (drbd9-tests' revert-older-data). The simulator keeps the
copy's blocks and the meta data of every resource the disk backs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackdrill.backends.sim.drbd_model import MetaImage

if TYPE_CHECKING:
    from stackdrill.backends.sim.lab import SimLab


class NoSavedCopy(ValueError):
    """`disk restore` of a disk no `disk save` copied (the message says which)."""


@dataclass(frozen=True)
class DiskCopy:
    blocks: dict[int, Any]
    meta: dict[str, MetaImage | None]  # DRBD resource -> the meta data in the copy


def _resources_on(lab: SimLab, host: str, disk: str) -> list[str]:
    return [r.name for r in lab.topology.drbd if r.disk == disk and host in r.nodes]


def save(lab: SimLab, host: str, disk: str) -> None:
    """Copy the whole disk aside (refused while a DRBD resource has it attached)."""
    meta = {res: lab.drbd[res].meta_on(host) for res in _resources_on(lab, host, disk)}
    lab.disk_copies[(host, disk)] = DiskCopy(dict(lab.disks[(host, disk)].blocks), meta)
    lab.kernel.log(f"disk/{host}:{disk}", "saved")


def restore(lab: SimLab, host: str, disk: str) -> None:
    """Write the saved copy back over the disk: its blocks and its DRBD meta data."""
    copy = lab.disk_copies.get((host, disk))
    if copy is None:
        raise NoSavedCopy(f"{host}/{disk}: no copy of this disk was saved")
    resources = {res: lab.drbd[res] for res in copy.meta}
    for res in resources.values():
        res.meta_on(host)  # refuses while attached, before anything is written
    lab.disks[(host, disk)].overwrite(dict(copy.blocks))
    for name, res in resources.items():
        res.restore_meta(host, copy.meta[name])
