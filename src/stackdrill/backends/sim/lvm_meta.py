"""LVM's on-disk layout and metadata, as lvm2 keeps it on a PV.

The first MiB of the PV is the metadata area (pvcreate's default pe_start): block
0 holds the mda header, which points at the current metadata text; blocks
1..255 are the circular buffer the text is written into. A change is written
like lvm2's vg_write()/vg_commit() (lib/metadata/metadata.c; vg_write bumps
`seqno`): first the new text into the next slot, then the header that commits
it. A crash between the two leaves the old metadata in force. Physical extent n
starts at block pe_start + n * extent_blocks.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import simpy

from stackdrill.backends.sim.disks import BLOCK_BYTES, BlockDevice, BlockIOError

MDA_BLOCKS = 256  # 1 MiB metadata area
HEADER_BLOCK = 0
PE_START = MDA_BLOCKS

Segment = tuple[int, int]  # (first PE, number of extents)


class LvmError(Exception):
    """A failed lvm command; the message reads like lvm2's."""


@dataclass(frozen=True)
class MdaHeader:
    """The mda header: which slot of the circular buffer holds the committed text."""

    seqno: int
    slot: int


@dataclass(frozen=True)
class VgMetadata:
    """The VG's metadata text, as an immutable value (written to a block as is)."""

    vg: str
    seqno: int
    extent_blocks: int
    pe_count: int
    clustered: bool = False  # the `c` attribute (vgchange -cy, clvmd)
    lock_type: str | None = None  # lvmlockd shared VG: "dlm" or "sanlock" (the `s` attribute)
    lvs: Mapping[str, tuple[Segment, ...]] = field(default_factory=dict)
    # The free ranges, once known: carried from a VG to the one `with_lv` makes from it, so
    # that creating n LVs costs n x (free ranges), not n x (all segments, sorted).
    _gaps: tuple[Segment, ...] | None = field(default=None, init=False, repr=False,
                                               compare=False)

    def used(self) -> set[int]:
        return {pe for segs in self.lvs.values() for first, n in segs
                for pe in range(first, first + n)}

    def _free_ranges(self) -> tuple[Segment, ...]:
        """Gaps between allocated segments, lowest first (interval arithmetic, so a VG
        of millions of extents costs no more than its number of segments)."""
        if self._gaps is not None:
            return self._gaps
        taken = sorted(seg for segs in self.lvs.values() for seg in segs)
        gaps, pe = [], 0
        for first, n in taken:
            if first > pe:
                gaps.append((pe, first - pe))
            pe = max(pe, first + n)
        if pe < self.pe_count:
            gaps.append((pe, self.pe_count - pe))
        object.__setattr__(self, "_gaps", tuple(gaps))  # a cache: frozen in every other way
        return tuple(gaps)

    def free_extents(self) -> int:
        return sum(n for _first, n in self._free_ranges())

    def allocate(self, count: int) -> tuple[Segment, ...]:
        """Lowest free extents first, as few segments as that gives."""
        free = self.free_extents()
        if count > free:
            raise LvmError(f'Volume group "{self.vg}" has insufficient free space '
                           f"({free} extents): {count} required.")
        segs, remaining = [], count
        for first, n in self._free_ranges():
            if not remaining:
                break
            take = min(n, remaining)
            segs.append((first, take))
            remaining -= take
        return tuple(segs)

    def with_lv(self, lv: str, segs: tuple[Segment, ...]) -> VgMetadata:
        new = replace(self, lvs={**self.lvs, lv: segs})
        if self._gaps is not None and lv not in self.lvs:  # a new LV: its extents leave the gaps
            object.__setattr__(new, "_gaps", _without(self._gaps, segs))
        return new

    def without_lv(self, lv: str) -> VgMetadata:
        return replace(self, lvs={k: v for k, v in self.lvs.items() if k != lv})

    def bumped(self) -> VgMetadata:
        new = replace(self, seqno=self.seqno + 1)
        object.__setattr__(new, "_gaps", self._gaps)  # the same LVs: the same gaps
        return new

    def segments(self, lv: str) -> tuple[Segment, ...]:
        if lv not in self.lvs:
            raise LvmError(f'Failed to find logical volume "{self.vg}/{lv}"')
        return self.lvs[lv]

    def as_lists(self) -> dict[str, list[tuple[int, int]]]:
        return {lv: list(segs) for lv, segs in sorted(self.lvs.items())}


def _without(gaps: tuple[Segment, ...], segs: tuple[Segment, ...]) -> tuple[Segment, ...]:
    """The free ranges `gaps` less the extents of `segs` (which may lie anywhere)."""
    out: list[Segment] = []
    for first, n in gaps:
        pieces = [(first, first + n)]  # [start, end)
        for s_first, s_n in segs:
            s_end = s_first + s_n
            cut: list[tuple[int, int]] = []
            for start, end in pieces:
                if s_end <= start or s_first >= end:
                    cut.append((start, end))
                    continue
                if start < s_first:
                    cut.append((start, s_first))
                if s_end < end:
                    cut.append((s_end, end))
            pieces = cut
        out += [(start, end - start) for start, end in pieces]
    return tuple(out)


def extent_blocks_for(extent_mb: int) -> int:
    return extent_mb * (1 << 20) // BLOCK_BYTES


def pe_block(pe: int, extent_blocks: int) -> int:
    return PE_START + pe * extent_blocks


def slot_for(seqno: int) -> int:
    return 1 + seqno % (MDA_BLOCKS - 1)


def _vg_not_found(vg: str) -> LvmError:
    return LvmError(f'Volume group "{vg}" not found')


def read_metadata(device: BlockDevice, vg: str) -> Generator[simpy.Event, Any, VgMetadata]:
    """vg_read(): the header, then the text it points at, from this host's device."""
    try:
        header = yield device.read(HEADER_BLOCK)
        if not isinstance(header, MdaHeader):
            raise _vg_not_found(vg)
        text = yield device.read(header.slot)
    except BlockIOError as exc:
        raise LvmError(f"{device.name}: read failed: {exc}\n"
                       f'Volume group "{vg}" not found') from exc
    if not isinstance(text, VgMetadata) or text.vg != vg or text.seqno != header.seqno:
        raise _vg_not_found(vg)
    return text


def peek_metadata(device: BlockDevice, vg: str) -> VgMetadata | None:
    header = device.peek(HEADER_BLOCK)
    if not isinstance(header, MdaHeader):
        return None
    text = device.peek(header.slot)
    if not isinstance(text, VgMetadata) or text.vg != vg or text.seqno != header.seqno:
        return None
    return text


def write_metadata(device: BlockDevice, md: VgMetadata,
                   between: Callable[[], Generator[simpy.Event, Any, None]] | None = None
                   ) -> Generator[simpy.Event, Any, None]:
    """vg_write() (the text, precommitted) then vg_commit() (the header that points at it);
    `between` runs in the gap (the writer may have died there)."""
    slot = slot_for(md.seqno)
    try:
        yield device.write(slot, md)
        if between is not None:
            yield from between()
        yield device.write(HEADER_BLOCK, MdaHeader(md.seqno, slot))
    except BlockIOError as exc:
        raise LvmError(f"{device.name}: write failed: {exc}\n"
                       f"Failed to write VG {md.vg}.") from exc
