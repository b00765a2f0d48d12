"""Guest time stamps that a guest's wall clock cannot skew.

The workloads stamp their history with the guest's boot-relative monotonic clock
(/proc/uptime) and boot id, never its wall clock: a guest whose clock is stepped (Jepsen's
clock nemesis, a drifting TCG guest, an NTP step) would otherwise move its writes in time,
and a check comparing two hosts' writes (`single_writer`, `resumed_after`) would judge the
clocks instead of the recovery. The lab maps each (host, boot) to its own time by sampling
the guest's uptime against the hypervisor's clock, NTP style: a few round trips through
the guest agent, the one with the shortest round trip kept (its error is at most half of
that round trip). Sampled before a host's first workload starts and again at the final
read, so every boot that wrote has a sample.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stackdrill.errors import LabNotReadyError

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

SAMPLE_COMMAND = "cat /proc/sys/kernel/random/boot_id /proc/uptime"
TRIES = 3


@dataclass(frozen=True)
class ClockSample:
    boot_id: str
    offset: float  # hypervisor wall time minus the guest's uptime, for this boot
    round_trip: float


def parse_sample(text: str, sent: float, received: float) -> ClockSample:
    """A sample from the guest's answer and the hypervisor times around the round trip."""
    lines = text.split()
    if len(lines) < 2:
        raise ValueError(f"not a boot id and an uptime: {text!r}")
    uptime = float(lines[1])
    return ClockSample(lines[0], (sent + received) / 2 - uptime, received - sent)


class GuestClocks:
    """The best sample per (host, boot); thread-safe (boots sample in the background)."""

    def __init__(self, lab: LibvirtLab) -> None:
        self.lab = lab
        self._best: dict[tuple[str, str], ClockSample] = {}
        self._lock = threading.Lock()

    def sample(self, host: str) -> None:
        """A few round trips to `host`'s guest; the shortest is kept for its boot."""
        for _ in range(TRIES):
            sent = time.time()
            done = self.lab.run(host, SAMPLE_COMMAND, timeout=30)
            received = time.time()
            if done.rc != 0:
                return
            self.keep(host, parse_sample(done.stdout, sent, received))

    def keep(self, host: str, sample: ClockSample) -> None:
        with self._lock:
            best = self._best.get((host, sample.boot_id))
            if best is None or sample.round_trip < best.round_trip:
                self._best[(host, sample.boot_id)] = sample

    def wall_time(self, host: str, boot_id: str, uptime: float) -> float:
        """The hypervisor's wall time of a guest's uptime stamp; a boot never sampled is
        a lab that could not be observed (LabNotReadyError), never a guessed time."""
        with self._lock:
            sample = self._best.get((host, boot_id))
        if sample is None:
            raise LabNotReadyError(f"{host}: no clock sample of its boot {boot_id}: the "
                                   "times of its writes are unknown")
        return uptime + sample.offset
