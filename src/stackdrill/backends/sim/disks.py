"""Simulated block storage: backing disks, and the block-device interface every layer shares.

A block device stores one opaque value per block address (4 KiB blocks). Writes
and reads are SimPy events that succeed after the device latency or fail with
`BlockIOError`; `peek` reads without time for checkers and reports.
"""

from __future__ import annotations

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


class SimDisk:
    """A physical disk on one host: healthy, failed (every I/O errors) or slow."""

    def __init__(self, kernel: Kernel, host: str, name: str, size_gb: int,
                 latency_s: float = 0.0005) -> None:
        self.kernel = kernel
        self.host = host
        self.name = f"{host}:{name}"
        self.blocks_total = size_gb * (1 << 30) // BLOCK_BYTES
        self.blocks: dict[int, Any] = {}
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
        self.blocks = {}
        self.kernel.log(f"disk/{self.name}", "replaced")

    def overwrite(self, blocks: dict[int, Any]) -> None:
        """Every block written at once from a copy (`dd` of a saved image)."""
        self.blocks = blocks
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
