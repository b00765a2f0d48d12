"""Run a drill: bring the lab up, play the schedule, recover, check, report, tear down.

The lab is always destroyed (unless kept on purpose), even when a step fails or the
user presses Ctrl-C.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackdrill.api import Lab, LabOptions
from stackdrill.backends import backend_class, lifetime
from stackdrill.checks.evidence import Evidence
from stackdrill.drill.model import Drill, RecoverSpec, Step
from stackdrill.drill.support import ensure_supported
from stackdrill.errors import BackendUnavailableError
from stackdrill.faults import Fault, describe
from stackdrill.recovery import RecoveryConfig, RecoveryEngine, RecoveryEvent, RecoveryResult
from stackdrill.report.state import state_summary

log = logging.getLogger(__name__)


@dataclass
class DrillRun:
    """Everything a drill produced, before it is judged and reported."""

    drill: Drill
    backend: str
    seed: int
    lab: Lab
    fault_log: list[tuple[float, Fault, float | None]] = field(default_factory=list)
    recoveries: list[RecoveryResult] = field(default_factory=list)
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


def _fault_actions(run: DrillRun, step: Step, index: int) -> None:
    lab, fault = run.lab, step.inject
    assert fault is not None

    def inject() -> None:
        lab.inject(fault)
        run.fault_log.append((lab.clock.now(), fault, None))

    lab.call_at(step.at, inject, f"schedule[{index}] inject {describe(fault)}")


def _heal_action(run: DrillRun, step: Step, index: int, fault: Fault) -> None:
    lab = run.lab

    def heal() -> None:
        lab.heal(fault)
        for i, (at, logged, healed) in enumerate(run.fault_log):
            if logged == fault and healed is None:
                run.fault_log[i] = (at, logged, lab.clock.now())
                break

    lab.call_at(step.at, heal, f"schedule[{index}] heal {describe(fault)}")


def _command_action(run: DrillRun, step: Step, index: int) -> None:
    command = step.run
    assert command is not None
    label = getattr(command, "label", None) or f"step-{index}"
    run.lab.call_at(step.at, lambda: run.lab.execute(command, label),
                    f"schedule[{index}] run {command.tool} {command.op}")


def recovery_config(spec: RecoverSpec) -> RecoveryConfig:
    return RecoveryConfig.for_profile(
        spec.profile, parallel=spec.parallel, assume_fenced=spec.assume_fenced,
        reserved_hosts=spec.reserved_hosts, recovery_method=spec.recovery_method,
        mode=spec.mode,
        fence_on_isolation=spec.fence_on_isolation, stop_when_idle=False,
    )


def _recover(run: DrillRun, spec: RecoverSpec, workdir: Path, progress: Progress) -> None:
    lab = run.lab
    db_url = f"sqlite:///{workdir / f'inventory-{len(run.recoveries)}.sqlite'}"

    def on_event(event: RecoveryEvent) -> None:
        run.events.append(event)
        progress(f"[{event.time:8.1f}s] {event.message}")

    engine = RecoveryEngine(run.drill.topology, lab.drivers, lab.clock, db_url,
                            recovery_config(spec), events=on_event)
    engine.seed_inventory()
    lab.drivers.compute.set_boot_hook(engine.boot_check)
    end = run.drill.spec.duration_s
    if spec.mode == "maintenance" and spec.host is not None:
        result = engine.drain(spec.host, until=end)
    else:
        result = engine.run(until=end)
    run.recoveries.append(result)


def execute(drill: Drill, *, backend: str = "sim", seed: int | None = None,
            lab_name: str | None = None, keep: bool = False,
            progress: Progress | None = None) -> DrillRun:
    """Run the drill to its end and return what happened (judging is `judge`'s job)."""
    progress = progress or (lambda _msg: None)
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
        with tempfile.TemporaryDirectory(prefix="stackdrill-") as tmp:
            _play(run, Path(tmp), progress)
        lab.quiesce()
        run.ended_at = lab.clock.now()
        run.evidence = Evidence.collect(lab)
        run.trace_sha256 = run.evidence.trace_sha256
    except BaseException:
        if not keep:
            lab.destroy()
        raise
    if keep:
        lifetime.unregister(lab)  # kept on purpose: it outlives this process too
    else:
        lab.destroy()
    return run


def _play(run: DrillRun, workdir: Path, progress: Progress) -> None:
    lab, spec = run.lab, run.drill.spec
    by_id: dict[str, Fault] = {}
    recoveries: list[Step] = []
    for index, step in enumerate(spec.schedule):
        if step.inject is not None:
            if step.id is not None:
                by_id[step.id] = step.inject
            _fault_actions(run, step, index)
        elif step.heal is not None:
            _heal_action(run, step, index, by_id[step.heal])
        elif step.run is not None:
            _command_action(run, step, index)
        elif step.recover is not None:
            recoveries.append(step)
    for step in sorted(recoveries, key=lambda s: s.at):
        lab.clock.sleep(max(0.0, step.at - lab.clock.now()))
        assert step.recover is not None
        progress(f"[{lab.clock.now():8.1f}s] recovery engine starts")
        _recover(run, step.recover, workdir, progress)
    lab.clock.sleep(max(0.0, spec.duration_s - lab.clock.now()))
    progress(f"[{lab.clock.now():8.1f}s] drill ends")
