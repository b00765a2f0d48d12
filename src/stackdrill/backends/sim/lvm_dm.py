"""Device-mapper on one host: the linear tables LVM loads, and /dev/VG/LV through them.

A table is loaded at activation from the metadata the activating command read,
and stays exactly as loaded until it is reloaded (lvchange --refresh, the
suspend/resume inside lvextend on this host, or clvmd doing that on every node)
or removed (deactivation, power loss) — dmsetup(8) `reload`/`resume`. I/O
through an LV is mapped with the table in force at submission time, so a host
whose table is stale keeps writing where the old metadata said.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import simpy

from stackdrill.backends.sim.disks import BlockDevice, BlockIOError
from stackdrill.backends.sim.kernel import Kernel
from stackdrill.backends.sim.lvm_meta import Segment, pe_block


@dataclass(frozen=True)
class DmTable:
    vg: str
    lv: str
    segments: tuple[Segment, ...]
    extent_blocks: int
    seqno: int  # the metadata seqno the table was built from
    mode: str  # how it was activated: ex / sh / local

    @property
    def size_blocks(self) -> int:
        return sum(n for _first, n in self.segments) * self.extent_blocks

    def map(self, addr: int) -> int | None:
        """PV block for LV block `addr` (linear targets, in segment order)."""
        if addr < 0:
            return None
        extent, offset = divmod(addr, self.extent_blocks)
        for first, count in self.segments:
            if extent < count:
                return pe_block(first + extent, self.extent_blocks) + offset
            extent -= count
        return None


class LvDevice:
    """/dev/VG/LV on one host: a BlockDevice mapped through that host's current table."""

    def __init__(self, kernel: Kernel, host: str, vg: str, lv: str, pv: BlockDevice,
                 table: Callable[[], DmTable | None], alive: Callable[[], bool]) -> None:
        self.kernel = kernel
        self.name = f"{host}:/dev/{vg}/{lv}"
        self._pv = pv
        self._table = table
        self._alive = alive

    def _target(self, addr: int) -> int:
        if not self._alive():
            raise BlockIOError(f"{self.name}: host is not running")
        table = self._table()
        if table is None:
            raise BlockIOError(f"{self.name}: no such device (LV not active)")
        mapped = table.map(addr)
        if mapped is None:
            raise BlockIOError(f"{self.name}: block {addr} beyond end of device "
                               f"({table.size_blocks} blocks)")
        return mapped

    def _failed(self, exc: BlockIOError) -> simpy.Event:
        event = self.kernel.env.event()
        event.defused = True
        event.fail(exc)
        return event

    def write(self, addr: int, data: Any) -> simpy.Event:
        try:
            return self._pv.write(self._target(addr), data)
        except BlockIOError as exc:
            return self._failed(exc)

    def read(self, addr: int) -> simpy.Event:
        try:
            return self._pv.read(self._target(addr))
        except BlockIOError as exc:
            return self._failed(exc)

    def peek(self, addr: int) -> Any:
        table = self._table()
        mapped = table.map(addr) if table is not None else None
        return None if mapped is None else self._pv.peek(mapped)

    def mapped_block(self, addr: int) -> int | None:
        """Which PV block LV block `addr` lands on right now (for checkers)."""
        table = self._table()
        return None if table is None else table.map(addr)
