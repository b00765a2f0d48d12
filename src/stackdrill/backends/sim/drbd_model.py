"""DRBD 8.4 node state: roles, disk and connection states, generation UUIDs, on-disk metadata.

Names and orderings follow the kernel module (drbd_strings.c, drbd_int.h), so
a status dict reads like `drbdadm status` / `/proc/drbd` and comparisons such
as "disk > Inconsistent" mean what they mean in drbd_state.c. Everything a
node keeps in its meta data (UUIDs, bitmap, activity log, flags) survives a
crash; the rest is reset when the host goes down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any

from stackdrill.backends.sim.disks import SimDisk
from stackdrill.backends.sim.hosts import SimHost

UUID_JUST_CREATED = 4  # drbd_int.h: the current UUID of freshly created meta data
UUID_NEW_BM_OFFSET = 1 << 48  # drbd_int.h: sync UUID = bitmap UUID + this offset
MASK64 = (1 << 64) - 1
BLOCK_KB = 4


class Role(StrEnum):
    PRIMARY = "Primary"
    SECONDARY = "Secondary"
    UNKNOWN = "Unknown"  # the peer's role while not connected


class Disk(IntEnum):
    """Disk states in DRBD's own order (enum drbd_disk_state)."""

    DISKLESS = 0
    ATTACHING = 1  # in drbd_adm_attach, reading the meta data
    FAILED = 2  # on the way to Diskless (detach, I/O error)
    NEGOTIATING = 3  # attached while Connected: waiting for the peer's UUIDs
    INCONSISTENT = 4
    OUTDATED = 5
    DUNKNOWN = 6
    CONSISTENT = 7
    UP_TO_DATE = 8

    @property
    def label(self) -> str:
        return _DISK_LABELS[self]


_DISK_LABELS = {
    Disk.DISKLESS: "Diskless",
    Disk.ATTACHING: "Attaching",
    Disk.FAILED: "Failed",
    Disk.NEGOTIATING: "Negotiating",
    Disk.INCONSISTENT: "Inconsistent",
    Disk.OUTDATED: "Outdated",
    Disk.DUNKNOWN: "DUnknown",
    Disk.CONSISTENT: "Consistent",
    Disk.UP_TO_DATE: "UpToDate",
}


class Conn(StrEnum):
    UNCONFIGURED = "Unconfigured"  # DRBD not running on the node (host down)
    STANDALONE = "StandAlone"
    WF_CONNECTION = "WFConnection"
    CONNECTED = "Connected"
    SYNC_SOURCE = "SyncSource"
    SYNC_TARGET = "SyncTarget"
    VERIFY_S = "VerifyS"  # online verify: this node requests, the peer answers digests
    VERIFY_T = "VerifyT"
    PAUSED_SYNC_S = "PausedSyncS"  # a resync paused (pause-sync on either node)
    PAUSED_SYNC_T = "PausedSyncT"

    @property
    def connected(self) -> bool:
        return self in (Conn.CONNECTED, Conn.SYNC_SOURCE, Conn.SYNC_TARGET, Conn.VERIFY_S,
                        Conn.VERIFY_T, Conn.PAUSED_SYNC_S, Conn.PAUSED_SYNC_T)

    @property
    def syncing(self) -> bool:
        """A resync runs or is paused between the two nodes."""
        return self in (Conn.SYNC_SOURCE, Conn.SYNC_TARGET, Conn.PAUSED_SYNC_S,
                        Conn.PAUSED_SYNC_T)


@dataclass
class Uuids:
    """Generation identifiers (current, bitmap, two history slots); low bit = was Primary."""

    current: int
    bitmap: int = 0
    history: list[int] = field(default_factory=lambda: [0, 0])

    def copy(self) -> Uuids:
        return Uuids(self.current, self.bitmap, list(self.history))

    def push_history(self, value: int) -> None:
        """drbd_uuid_move_history + set UI_HISTORY_START."""
        self.history = [value, self.history[0]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "current": f"{self.current:016X}",
            "bitmap": f"{self.bitmap:016X}",
            "history": [f"{h:016X}" for h in self.history],
        }


@dataclass(frozen=True)
class MetaImage:
    """A copy of a node's meta data as it sits on the backing disk (internal meta-disk):
    what `dd` of a detached disk takes along and writes back."""

    uuids: Uuids
    md_disk: Disk
    bitmap: frozenset[int]
    full_sync: bool
    primary_ind: bool
    peer_outdated: bool
    al: tuple[tuple[int, int], ...]


@dataclass(eq=False, repr=False)
class Node:
    """One side of the resource: meta data (persistent) and runtime state (volatile)."""

    name: str
    host: SimHost
    disk: SimDisk
    # --- meta data on the backing disk (internal meta-disk) -----------------
    uuids: Uuids
    md_disk: Disk = Disk.UP_TO_DATE  # disk state as last written to the meta data
    bitmap: set[int] = field(default_factory=set)  # blocks out of sync with the peer
    full_sync: bool = False  # MDF_FULL_SYNC: every block is out of sync
    primary_ind: bool = False  # MDF_PRIMARY_IND: was Primary when last written
    peer_outdated: bool = False  # MDF_PEER_OUT_DATED
    al: dict[int, int] = field(default_factory=dict)  # activity log: blocks in flight
    md_valid: bool = True  # False after a disk replacement until attach (create-md)
    # --- runtime state --------------------------------------------------------
    running: bool = True
    role: Role = Role.SECONDARY
    dstate: Disk = Disk.UP_TO_DATE
    conn: Conn = Conn.CONNECTED
    peer_role: Role = Role.SECONDARY
    peer_disk: Disk = Disk.UP_TO_DATE
    crashed_primary: bool = False
    susp_fen: bool = False  # I/O frozen while the fence-peer handler runs
    susp_user: bool = False  # I/O frozen by drbdadm suspend-io, until resume-io
    user_isp: bool = False  # drbdadm pause-sync: resyncs stay paused, until resume-sync
    new_cur_uuid: bool = False  # NEW_CUR_UUID: rotate once the freeze ends
    discard_my_data: bool = False
    split_brain: bool = False
    pending_loss: bool = False  # hung while the peer declared the link dead
    negotiating: bool = False  # D_NEGOTIATING: attached on a link already dead, md loaded
    io_error_detached: bool = False
    frozen: list[Any] = field(default_factory=list)  # I/O submitted while suspended
    ed_uuid: int = 0  # exposed data UUID remembered while neither a disk nor a peer serves it

    def __repr__(self) -> str:
        return (f"Node({self.name} {self.role.value} {self.dstate.label} {self.conn.value}"
                f" peer={self.peer_role.value}/{self.peer_disk.label})")

    @property
    def suspended(self) -> bool:
        """drbd_suspended(): new I/O is queued, not started ('s' in /proc/drbd)."""
        return self.susp_fen or self.susp_user

    @property
    def attached(self) -> bool:
        return self.dstate is not Disk.DISKLESS

    def meta_image(self) -> MetaImage:
        return MetaImage(self.uuids.copy(), self.md_disk, frozenset(self.bitmap),
                         self.full_sync, self.primary_ind, self.peer_outdated,
                         tuple(self.al.items()))

    def load_meta(self, image: MetaImage) -> None:
        """The meta data of `image` written over this node's (detached) disk."""
        self.uuids, self.md_disk = image.uuids.copy(), image.md_disk
        self.bitmap, self.full_sync = set(image.bitmap), image.full_sync
        self.primary_ind, self.peer_outdated = image.primary_ind, image.peer_outdated
        self.al = dict(image.al)

    def set_disk(self, state: Disk) -> None:
        self.dstate = state
        if state is not Disk.DISKLESS:
            self.md_disk = state

    def al_add(self, addr: int) -> None:
        self.al[addr] = self.al.get(addr, 0) + 1

    def al_done(self, addr: int) -> None:
        left = self.al.get(addr, 0) - 1
        if left > 0:
            self.al[addr] = left
        else:
            self.al.pop(addr, None)

    def set_current(self, value: int) -> None:
        """__drbd_uuid_set(UI_CURRENT): the low bit records the role."""
        value &= MASK64
        self.uuids.current = value | 1 if self.role is Role.PRIMARY else value & ~1

    def out_of_sync_kb(self, size_kb: int) -> int:
        return size_kb if self.full_sync else len(self.bitmap) * BLOCK_KB
