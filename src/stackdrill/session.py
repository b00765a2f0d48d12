"""Reopen a named lab for one CLI command: rebuild it and replay what was done to it."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackdrill.api import Lab
from stackdrill.api.commands import CommandAdapter
from stackdrill.backends import backend_class
from stackdrill.faults import FaultAdapter
from stackdrill.labstore import LabAction, LabRecord
from stackdrill.recovery import RecoveryConfig, RecoveryEngine, RecoveryEvent, RecoveryResult
from stackdrill.topology import Topology, load_topology

Progress = Callable[[RecoveryEvent], None]


class LabSession:
    """A lab reopened from its record; `apply` runs one more action and records it."""

    def __init__(self, record: LabRecord, workdir: Path) -> None:
        self.record = record
        self.workdir = workdir
        self.topology: Topology = load_topology(record.topology)
        cls = backend_class(record.backend)
        if not cls.capabilities.in_process:  # real resources: they are still there
            self.lab: Lab = cls().attach(self.topology, lab_name=record.name)
        else:
            self.lab = cls().create(self.topology, lab_name=record.name, seed=record.seed)
            for action in record.actions:
                self._do(action, progress=None)
            self.lab.clock.sleep(max(0.0, record.now - self.lab.clock.now()))
        self.last_recovery: RecoveryResult | None = None

    def _do(self, action: LabAction, progress: Progress | None) -> None:
        lab = self.lab
        lab.clock.sleep(max(0.0, action.at - lab.clock.now()))
        if action.op == "inject" and action.fault is not None:
            lab.inject(FaultAdapter.validate_python(action.fault))
        elif action.op == "heal" and action.fault is not None:
            lab.heal(FaultAdapter.validate_python(action.fault))
        elif action.op == "advance":
            lab.clock.sleep(float(action.options["seconds"]))
        elif action.op == "run":
            lab.execute(CommandAdapter.validate_python(action.options["command"]),
                        action.id or "command")
        elif action.op == "recover":
            self.last_recovery = self._recover(action.options, progress)

    def _recover(self, options: dict[str, Any], progress: Progress | None) -> RecoveryResult:
        config = RecoveryConfig.for_profile(
            options.get("profile", "stackdrill"), parallel=int(options.get("parallel", 4)),
            assume_fenced=bool(options.get("assume_fenced", False)), stop_when_idle=True)
        url = f"sqlite:///{self.workdir / 'inventory.sqlite'}"
        engine = RecoveryEngine(self.topology, self.lab.drivers, self.lab.clock, url, config,
                                events=progress)
        engine.seed_inventory()
        self.lab.drivers.compute.set_boot_hook(engine.boot_check)
        return engine.run(until=self.lab.clock.now() + float(options.get("budget_s", 900)))

    def apply(self, action: LabAction, progress: Progress | None = None) -> LabRecord:
        self._do(action, progress)
        self.record = self.record.with_action(action, self.lab.clock.now())
        return self.record


def open_session(record: LabRecord) -> tuple[LabSession, tempfile.TemporaryDirectory[str]]:
    tmp = tempfile.TemporaryDirectory(prefix="stackdrill-lab-")
    return LabSession(record, Path(tmp.name)), tmp
