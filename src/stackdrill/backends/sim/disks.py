"""Simulated block storage: backing disks, and the block-device interface every layer shares.

A block device stores one opaque value per block address (4 KiB blocks). Writes
and reads are SimPy events that succeed after the device latency or fail with
`BlockIOError`; `peek` reads without time for checkers and reports.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import simpy

from stackdrill.backends.sim.kernel import Kernel

BLOCK_BYTES = 4096


class BlockIOError(Exception):
    """An I/O error as the layer above sees it (EIO)."""


class BlockDevice(Protocol):
    name: str

    def write(self, addr: int, data: Any) -> simpy.Event: ...

    def read(self, addr: int) -> simpy.Event: ...

    def peek(self, addr: int) -> Any: ...


@dataclass(frozen=True)
class Garbage:
    """What a silently corrupted block holds: equal to nothing else, no record in it."""

    disk: str
    addr: int


class BlockMap(dict[int, Any]):
    """A disk's blocks (address -> value) that also knows its addresses in order, so a
    reader can list the written blocks of one range (an LV's extents) without sorting the
    whole disk each time. Kept at the write: a new address is queued by `__setitem__` and
    merged into the sorted list at the next range query (Timsort merges the two sorted runs
    in linear time); anything that removes or bulk-adds addresses drops the list, which the
    next query rebuilds. Every mutation of the dict goes through one of these methods."""

    __slots__ = ("_fresh", "_order")

    def __init__(self, blocks: Mapping[int, Any] | Iterable[tuple[int, Any]] = ()) -> None:
        super().__init__(blocks)
        self._order: list[int] | None = None  # sorted addresses; None: rebuild at next query
        self._fresh: list[int] = []  # addresses added since `_order` was last merged

    def __setitem__(self, addr: int, value: Any) -> None:
        if self._order is not None and addr not in self:
            self._fresh.append(addr)
        super().__setitem__(addr, value)

    def __delitem__(self, addr: int) -> None:
        super().__delitem__(addr)
        self._forget()

    def pop(self, addr: int, *default: Any) -> Any:
        self._forget()
        return super().pop(addr, *default)

    def popitem(self) -> tuple[int, Any]:
        self._forget()
        return super().popitem()

    def clear(self) -> None:
        self._forget()
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self._forget()
        super().update(*args, **kwargs)

    def setdefault(self, addr: int, default: Any = None) -> Any:
        self._forget()
        return super().setdefault(addr, default)

    def __ior__(self, other: Any) -> BlockMap:  # type: ignore[override,misc]
        self._forget()
        super().update(other)
        return self

    def __reduce__(self) -> tuple[type[BlockMap], tuple[dict[int, Any]]]:
        """Copies and pickles carry the blocks only: the index is rebuilt, never shared."""
        return BlockMap, (dict(self),)

    def _forget(self) -> None:
        self._order = None
        self._fresh = []

    def addresses(self, start: int, end: int) -> list[int]:
        """The written addresses in [start, end), ascending."""
        if self._order is None:
            self._order = sorted(self)
            self._fresh = []
        elif self._fresh:
            self._fresh.sort()
            self._order += self._fresh
            self._order.sort()
            self._fresh = []
        order = self._order
        return order[bisect.bisect_left(order, start):bisect.bisect_left(order, end)]


class SimDisk:
    """A physical disk on one host: healthy, failed (every I/O errors) or slow."""

    def __init__(self, kernel: Kernel, host: str, name: str, size_gb: int,
                 latency_s: float = 0.0005) -> None:
        self.kernel = kernel
        self.host = host
        self.name = f"{host}:{name}"
        self.blocks_total = size_gb * (1 << 30) // BLOCK_BYTES
        self.blocks = BlockMap()
        self.failed = False
        self.base_latency = latency_s
        self.extra_latency = 0.0
        self.powered = True  # a disk in a host without power answers nothing

    @property
    def latency(self) -> float:
        return self.base_latency + self.extra_latency

    def fail(self) -> None:
        self.failed = True
        self.kernel.log(f"disk/{self.name}", "failed")

    def corrupt(self, addresses: list[int]) -> None:
        """Overwrite these blocks with garbage, silently (no error, as firmware does)."""
        for addr in addresses:
            self.blocks[addr] = Garbage(self.name, addr)
        self.kernel.log(f"disk/{self.name}", "corrupted", blocks=len(addresses))

    def replace(self) -> None:
        """A new, empty disk in the same slot."""
        self.failed = False
        self.blocks = BlockMap()
        self.kernel.log(f"disk/{self.name}", "replaced")

    def overwrite(self, blocks: Mapping[int, Any]) -> None:
        """Every block written at once from a copy (`dd` of a saved image)."""
        self.blocks = BlockMap(blocks)
        self.kernel.log(f"disk/{self.name}", "overwritten", blocks=len(blocks))

    def slow(self, latency_s: float) -> None:
        self.extra_latency = latency_s
        self.kernel.log(f"disk/{self.name}", "slow", latency=latency_s)

    def _check(self, addr: int) -> None:
        if not 0 <= addr < self.blocks_total:
            raise BlockIOError(f"{self.name}: block {addr} beyond end of device")

    def write(self, addr: int, data: Any) -> simpy.Event:
        env = self.kernel.env
        done = env.event()

        def finish(_e: simpy.Event) -> None:
            if self.failed or not self.powered:
                done.fail(BlockIOError(f"{self.name}: I/O error writing block {addr}"))
                return
            try:
                self._check(addr)
            except BlockIOError as exc:
                done.fail(exc)
                return
            self.blocks[addr] = data
            done.succeed()

        env.timeout(self.latency).callbacks.append(finish)
        return done

    def read(self, addr: int) -> simpy.Event:
        env = self.kernel.env
        done = env.event()

        def finish(_e: simpy.Event) -> None:
            if self.failed or not self.powered:
                done.fail(BlockIOError(f"{self.name}: I/O error reading block {addr}"))
            else:
                done.succeed(self.blocks.get(addr))

        env.timeout(self.latency).callbacks.append(finish)
        return done

    def peek(self, addr: int) -> Any:
        return self.blocks.get(addr)
