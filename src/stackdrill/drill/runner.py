"""Run a drill: bring the lab up, play the schedule, recover, check, report, tear down.

The lab is always destroyed (unless kept on purpose), even when a step fails or the
user presses Ctrl-C.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackdrill.api import Lab, LabOptions, Observation
from stackdrill.backends import backend_class, lifetime
from stackdrill.checks.evidence import Evidence
from stackdrill.drill.model import Drill
from stackdrill.drill.player import FaultSpan, Player
from stackdrill.drill.support import ensure_supported
from stackdrill.errors import BackendUnavailableError
from stackdrill.recovery import RecoveryEvent, RecoveryResult
from stackdrill.recovery.dburl import InventoryTarget, inventory_url, run_namespace
from stackdrill.report.state import state_summary

log = logging.getLogger(__name__)


@dataclass
class DrillRun:
    """Everything a drill produced, before it is judged and reported."""

    drill: Drill
    backend: str
    seed: int
    lab: Lab
    fault_log: list[FaultSpan] = field(default_factory=list)
    recoveries: list[RecoveryResult] = field(default_factory=list)
    checkpoints: dict[str, Observation] = field(default_factory=dict)  # observe steps
    events: list[RecoveryEvent] = field(default_factory=list)
    state_before: dict[str, Any] = field(default_factory=dict)
    ended_at: float = 0.0
    trace_sha256: str = ""
    evidence: Evidence | None = None

    @property
    def final(self) -> Evidence:
        """The evidence of a finished run (execute always collects it)."""
        if self.evidence is None:
            raise RuntimeError(f"drill {self.drill.name} has not finished")
        return self.evidence


Progress = Callable[[str], None]


def execute(drill: Drill, *, backend: str = "sim", seed: int | None = None,
            lab_name: str | None = None, keep: bool = False,
            progress: Progress | None = None,
            inventory: InventoryTarget | None = None) -> DrillRun:
    """Run the drill to its end and return what happened (judging is `judge`'s job).
    The engine's inventory goes where `inventory` says (default: $STACKDRILL_INVENTORY_URL,
    else a SQLite file per run), in a namespace of this run's own."""
    progress = progress or (lambda _msg: None)
    inventory = inventory or inventory_url()
    inventory.check()  # an unreachable database fails before a lab is brought up
    cls = backend_class(backend)
    reason = cls.available()
    if reason is not None:
        raise BackendUnavailableError(f"backend {backend!r} cannot run here: {reason}")
    ensure_supported(drill, backend, cls.capabilities)
    seed = drill.spec.seed if seed is None else seed
    workload = drill.spec.workload
    writers = None if workload.instances == "all" else frozenset(workload.instances)
    options = LabOptions(write_interval_s=workload.write_interval_s, writers=writers,
                         progress=progress)
    name = lab_name or f"{drill.name}-{seed}"
    progress(f"bringing up lab {name!r} on {backend} ({len(drill.topology.hosts)} hosts, "
             f"{len(drill.topology.instances)} instances)")
    lab = cls().create(drill.topology, lab_name=name, seed=seed, options=options)
    run = DrillRun(drill, backend, seed, lab)
    try:
        run.state_before = state_summary(lab.observe())
        with lifetime.scratch_dir("run") as workdir, \
                run_namespace(inventory, workdir, "inventory") as url:
            _play(run, workdir, progress, url)
        lab.quiesce()
        run.ended_at = lab.clock.now()
        run.evidence = Evidence.collect(lab)
        run.trace_sha256 = run.evidence.trace_sha256
    finally:
        _leave(lab, keep)
    return run


def _leave(lab: Lab, keep: bool) -> None:
    """Destroy the lab, or keep it on purpose however the run ended (a failed check, an
    error, Ctrl-C): a lab the user asked to keep is the one to look at after a failure."""
    if keep:
        lab.keep()  # recorded as kept: no other run reclaims it
        lifetime.unregister(lab)  # kept on purpose: it outlives this process too
    else:
        lab.destroy()


def _play(run: DrillRun, workdir: Path, progress: Progress, inventory: str) -> None:
    """The drill's schedule through the one player; its fault log and recoveries are the
    run's."""

    def on_event(event: RecoveryEvent) -> None:
        run.events.append(event)
        progress(f"[{event.time:8.1f}s] {event.message}")

    player = Player(run.lab, run.drill.topology, workdir, on_event=on_event, progress=progress,
                    inventory=inventory)
    run.fault_log, run.recoveries = player.fault_log, player.recoveries
    run.checkpoints = player.checkpoints
    player.play(run.drill.spec.schedule, end=run.drill.spec.duration_s)
    progress(f"[{run.lab.clock.now():8.1f}s] drill ends")
