"""Reopen a named lab for one CLI command: rebuild it and replay what was done to it.

A sim lab is replayed step by step through the drill player, each step at the lab
time it was given and to its end, exactly as the commands that gave them ran; a new
step goes through the same player. A lab with real resources is reattached instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stackdrill.api import Lab
from stackdrill.backends import backend_class, lifetime
from stackdrill.cli.labstore import LabRecord
from stackdrill.drill.model import Step
from stackdrill.drill.player import Player
from stackdrill.recovery import RecoveryEvent, RecoveryResult
from stackdrill.topology import Topology, load_topology

Progress = Callable[[RecoveryEvent], None]


def topology_of(record: LabRecord) -> Topology:
    """The lab's topology: its file, or for a lab kept by `run --keep` its drill's (which
    may be inline or changed by topology_overrides)."""
    if record.kept_from is not None:
        from stackdrill.drill import load_drill

        return load_drill(record.kept_from.drill).topology
    return load_topology(record.topology)


class LabSession:
    """A lab reopened from its record; `apply` carries out one more step and records it."""

    def __init__(self, record: LabRecord, workdir: Path) -> None:
        self.record = record
        self.workdir = workdir
        self.topology: Topology = topology_of(record)
        self.last_recovery: RecoveryResult | None = None
        self._progress: Progress | None = None
        cls = backend_class(record.backend)
        if not cls.capabilities.in_process:  # real resources: they are still there
            self.lab: Lab = cls().attach(self.topology, lab_name=record.name)
            self.player = Player(self.lab, self.topology, workdir, on_event=self._relay)
            self.player.recall(record.steps)
        else:
            self.lab = cls().create(self.topology, lab_name=record.name, seed=record.seed)
            self.player = Player(self.lab, self.topology, workdir, on_event=self._relay)
            for step in record.steps:
                self.player.apply(step)
            self.player.wait_until(record.now)

    def _relay(self, event: RecoveryEvent) -> None:
        if self._progress is not None:
            self._progress(event)

    def apply(self, step: Step, progress: Progress | None = None) -> LabRecord:
        """Carry the step out now (a recovery's events go to `progress`) and record it."""
        self._progress = progress
        try:
            result = self.player.apply(step)
        finally:
            self._progress = None
        if result is not None:
            self.last_recovery = result
        self.record = self.record.with_step(step, self.lab.clock.now())
        return self.record

    def wait(self, seconds: float) -> LabRecord:
        """Let lab time pass; no step is recorded, only the time reached."""
        self.player.wait_until(self.lab.clock.now() + seconds)
        self.record = self.record.at(self.lab.clock.now())
        return self.record


@contextmanager
def open_session(record: LabRecord) -> Iterator[LabSession]:
    """The lab reopened for one command, with a scratch directory (the engine's inventory)
    that is removed when the command ends, however it ends."""
    with lifetime.scratch_dir("lab") as workdir:
        yield LabSession(record, workdir)
