"""Per-instance recovery as a flow of small tasks (TaskFlow / Masakari style).

Each task declares the journal step it completes, the report phase it belongs
to and what it `requires` from earlier tasks' outputs. `execute` is a generator:
it yields driver futures (or `Sleep`) and the engine resumes it when they are
done, so one thread drives many flows deterministically. A task finishes by
writing its journal step in the same transaction as its DB change, which is
what lets a restarted engine skip exactly the tasks already done. `revert`
undoes a task's effect on the lab when a later task fails.
"""

from __future__ import annotations

import logging
from abc import ABC
from collections.abc import Generator
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from sqlalchemy.orm import Session

from stackdrill.api import Drivers, VolumePath
from stackdrill.recovery import sql
from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.inventory import (
    MigrationStatus,
    TaskState,
    VmState,
)
from stackdrill.recovery.journal import Journal, Step
from stackdrill.recovery.result import Phase

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sleep:
    seconds: float


Yieldable = Future[Any] | Sleep
TaskGen = Generator[Yieldable, Any, None]


class TaskStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCESS = "success"
    FAILURE = "failure"
    REVERTED = "reverted"


class FlowKind(StrEnum):
    EVACUATE = "evacuate"  # source fenced; rebuild on target
    MOVE = "move"  # maintenance: clean stop on source, start on target
    STOP = "stop"  # maintenance without a target: clean stop, resumed after boot
    RESUME = "resume"  # start again on its own host (resume_guests_state_on_host_boot)
    REATTACH = "reattach"  # its storage server was fenced: new volume path, restart in place


class StepFailed(RuntimeError):
    """A task could not complete; the flow reverts and says why."""


class Runtime(Protocol):
    """What tasks may use of the engine."""

    drivers: Drivers
    journal: Journal
    config: RecoveryConfig

    def now(self) -> float: ...
    def failed_hosts(self) -> set[str]: ...
    def start_clearance(self, ctx: FlowContext) -> str | None:
        """None when the instance may start on its target; else why it must wait."""


@dataclass
class FlowContext:
    kind: FlowKind
    instance: str
    uuid: str
    attempt: int
    source: str
    target: str
    volumes: tuple[str, ...]
    has_port: bool
    rt: Runtime
    values: dict[str, Any] = field(default_factory=dict)

    def commit(self, step: Step, **detail: Any) -> Session:
        """Context manager: DB changes + this flow's journal row in one transaction."""
        return self.rt.journal.step(step, instance=self.instance,  # type: ignore[return-value]
                                    attempt=self.attempt, **detail)

    def done(self, step: Step) -> bool:
        return step.value in self.rt.journal.attempt_steps(self.instance, self.attempt)


class Task(ABC):
    step: ClassVar[Step]
    phase: ClassVar[Phase | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ()
    revert_on_failure: ClassVar[bool] = False  # a failure may have left effects behind

    def __init__(self) -> None:
        self.status = TaskStatus.PENDING

    def execute(self, ctx: FlowContext) -> TaskGen:
        with ctx.commit(self.step):
            pass
        yield from ()

    def revert(self, ctx: FlowContext) -> TaskGen:
        yield from ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status.value})"


def gather(futures: list[Future[Any]]) -> Future[list[Any]]:
    """One future for many; fails with the first failure (in list order)."""
    out: Future[list[Any]] = Future()
    out.set_running_or_notify_cancel()
    if not futures:
        out.set_result([])
        return out
    remaining = [len(futures)]

    def one_done(_f: Future[Any]) -> None:
        remaining[0] -= 1
        if remaining[0] == 0:
            for fut in futures:
                exc = fut.exception()
                if exc is not None:
                    out.set_exception(exc)
                    return
            out.set_result([f.result() for f in futures])

    for fut in futures:
        fut.add_done_callback(one_done)
    return out


# ---------------------------------------------------------------- the tasks


class ReserveTarget(Task):
    """Claim capacity on the target and record the evacuation (Nova's migration row)."""

    step = Step.RESERVED
    requires = ("target", "served_by", "attach")
    provides = ("target",)

    def execute(self, ctx: FlowContext) -> TaskGen:
        with ctx.commit(self.step, kind=ctx.kind.value, source=ctx.source, target=ctx.target,
                        served_by=ctx.values["served_by"], attach=ctx.values["attach"]) as s:
            _host, vcpus, ram_mb = sql.instance_row(s, ctx.uuid)
            if ctx.target != ctx.source:
                _usage(s, ctx.target, vcpus, ram_mb)
                sql.unreserve_spare(s, ctx.target)
            mtype = {FlowKind.EVACUATE: "evacuation", FlowKind.MOVE: "migration"}.get(ctx.kind)
            if mtype is not None:
                sql.new_migration(s, ctx.uuid, ctx.source, ctx.target, mtype,
                                  MigrationStatus.ACCEPTED.value, ctx.rt.now())
        yield from ()


class StopOnSource(Task):
    """Maintenance: a clean stop on the drained host, and its volumes released there."""

    step = Step.SOURCE_STOPPED
    phase = Phase.SHUTDOWN

    def execute(self, ctx: FlowContext) -> TaskGen:
        began = ctx.rt.now()
        yield ctx.rt.drivers.compute.destroy(ctx.instance, ctx.source)
        if ctx.has_port:
            yield ctx.rt.drivers.network.unplug(ctx.instance, ctx.source)
        yield gather([ctx.rt.drivers.storage.release(v, ctx.source) for v in ctx.volumes])
        with ctx.commit(self.step, began=began) as s:
            sql.instance_task(s, ctx.uuid, TaskState.POWERING_OFF.value)


class StopInPlace(Task):
    """Storage failover: stop the guest whose volume server was fenced (its I/O fails
    anyway), keeping its port and host, so that it starts again on the new volume path.
    Nova's equivalent is a hard reboot after the volume's connection info changed."""

    step = Step.SOURCE_STOPPED
    phase = Phase.SHUTDOWN

    def execute(self, ctx: FlowContext) -> TaskGen:
        began = ctx.rt.now()
        yield ctx.rt.drivers.compute.destroy(ctx.instance, ctx.source)
        with ctx.commit(self.step, began=began) as s:
            sql.instance_task(s, ctx.uuid, TaskState.REBOOTING_HARD.value)


class ParkStopped(Task):
    """Maintenance without a target: leave the instance stopped for its host's boot."""

    step = Step.GUEST_STOPPED

    def execute(self, ctx: FlowContext) -> TaskGen:
        with ctx.commit(self.step, at=ctx.source) as s:
            sql.instance_state(s, ctx.uuid, VmState.STOPPED.value, None)
        yield from ()


class UpdateInstanceHost(Task):
    """Nova's rebuild-on-evacuate: the instance belongs to the target from here on."""

    step = Step.DB_UPDATED
    requires = ("target",)

    def execute(self, ctx: FlowContext) -> TaskGen:
        with ctx.commit(self.step, at=ctx.target) as s:
            host, vcpus, ram_mb = sql.instance_row(s, ctx.uuid)
            if ctx.target != host:
                _usage(s, host, -vcpus, -ram_mb)
            sql.instance_host(s, ctx.uuid, ctx.target, TaskState.REBUILDING.value)
        yield from ()


class PrepareStorage(Task):
    """Make every volume usable on the target: promote a local replica or connect remotely."""

    step = Step.STORAGE_READY
    phase = Phase.STORAGE
    requires = ("target",)
    provides = ("paths",)

    def execute(self, ctx: FlowContext) -> TaskGen:
        began = ctx.rt.now()
        failed = sorted(ctx.rt.failed_hosts() - {ctx.target})
        storage = ctx.rt.drivers.storage
        result: list[VolumePath] = yield gather(
            [storage.prepare(v, ctx.target, failed) for v in ctx.volumes])
        paths = {p.volume: {"path": p.path, "mode": p.mode.value, "served_by": p.served_by}
                 for p in result}
        with ctx.commit(self.step, began=began, paths=paths):
            pass
        ctx.values["paths"] = paths


class StartGuest(Task):
    """Define and start on the target, only once the old copy provably cannot run.

    The request is journaled before it is sent. A restarted engine that finds the
    request without its completion does not send it again: it watches the target
    until the guest shows up, and re-sends only after the operation timeout.
    """

    step = Step.STARTED
    phase = Phase.START
    requires = ("paths",)
    revert_on_failure = True

    def execute(self, ctx: FlowContext) -> TaskGen:
        while (why := ctx.rt.start_clearance(ctx)) is not None:
            log.info("%s waits before starting on %s: %s", ctx.instance, ctx.target, why)
            yield Sleep(ctx.rt.config.poll_s)
        compute = ctx.rt.drivers.compute
        steps = ctx.rt.journal.attempt_steps(ctx.instance, ctx.attempt)
        requested = steps.get(Step.START_REQUESTED.value)
        adopted = False
        if requested is not None:
            deadline = requested.time + ctx.rt.config.op_timeout_s
            while True:
                guests = yield compute.guests(ctx.target)
                if any(g.name == ctx.instance and g.running for g in guests):
                    adopted = True
                    break
                if ctx.rt.now() >= deadline:
                    log.warning("%s: start on %s never completed; sending it again",
                                ctx.instance, ctx.target)
                    yield compute.destroy(ctx.instance, ctx.target)
                    break
                yield Sleep(ctx.rt.config.poll_s)
            began = requested.time
        else:
            with ctx.commit(Step.START_REQUESTED, target=ctx.target):
                pass
            began = ctx.rt.now()
        if not adopted:
            paths = {v: str(p["path"]) for v, p in ctx.values["paths"].items()}
            yield compute.start(ctx.instance, ctx.target, paths)
        with ctx.commit(self.step, began=began, adopted=adopted) as s:
            sql.instance_task(s, ctx.uuid, TaskState.REBUILD_SPAWNING.value)

    def revert(self, ctx: FlowContext) -> TaskGen:
        yield ctx.rt.drivers.compute.destroy(ctx.instance, ctx.target)


class AttachVolumes(Task):
    """Record each volume's new connection (Cinder attachment + Nova BDM) on the target."""

    step = Step.ATTACHED
    phase = Phase.ATTACH
    requires = ("paths",)

    def execute(self, ctx: FlowContext) -> TaskGen:
        began = ctx.rt.now()
        paths: dict[str, dict[str, str]] = ctx.values["paths"]
        with ctx.commit(self.step, began=began) as s:
            for bdm_id, volume_id, name in sql.instance_volumes(s, ctx.uuid):
                info = paths.get(name)
                if info is None:
                    continue
                sql.attach(s, bdm_id, volume_id, ctx.target, info["mode"], dict(info))
        yield from ()


class PlugNetwork(Task):
    """Same MAC and IP on the target; the overlay controller updates every host's FDB."""

    step = Step.NETWORK_PLUGGED
    phase = Phase.NETWORK

    def execute(self, ctx: FlowContext) -> TaskGen:
        began = ctx.rt.now()
        if ctx.has_port:
            yield ctx.rt.drivers.network.plug(ctx.instance, ctx.target)
        with ctx.commit(self.step, began=began):
            pass

    def revert(self, ctx: FlowContext) -> TaskGen:
        if ctx.has_port:
            yield ctx.rt.drivers.network.unplug(ctx.instance, ctx.target)


class VerifyGuest(Task):
    """The guest runs, writes to its volumes, and another host reaches it on the overlay."""

    step = Step.VERIFIED
    phase = Phase.VERIFY

    def execute(self, ctx: FlowContext) -> TaskGen:
        began = ctx.rt.now()
        why = ""
        for _ in range(max(1, ctx.rt.config.verify_retries)):
            running = yield ctx.rt.drivers.compute.verify(ctx.instance, ctx.target)
            reachable = True
            if running and ctx.has_port:
                reachable = yield ctx.rt.drivers.network.reachable(ctx.instance)
            if running and reachable:
                with ctx.commit(self.step, began=began):
                    pass
                return
            why = "guest not running or its volumes not writable" if not running else \
                "not reachable on the overlay"
            yield Sleep(ctx.rt.config.poll_s)
        raise StepFailed(f"verification on {ctx.target} failed: {why}")


class FinishFlow(Task):
    """vm_state active, task_state cleared, migration done: the instance is recovered."""

    step = Step.DONE

    def execute(self, ctx: FlowContext) -> TaskGen:
        with ctx.commit(self.step, at=ctx.target) as s:
            sql.instance_state(s, ctx.uuid, VmState.ACTIVE.value, None)
            sql.migration_status(s, ctx.uuid, MigrationStatus.ACCEPTED.value,
                                 MigrationStatus.DONE.value)
        yield from ()


def build_flow(kind: FlowKind) -> list[Task]:
    """The flow as data: a report or a test can read which tasks run, in which order."""
    tail: list[Task] = [PrepareStorage(), StartGuest(), AttachVolumes(), PlugNetwork(),
                        VerifyGuest(), FinishFlow()]
    if kind is FlowKind.EVACUATE:
        return [ReserveTarget(), UpdateInstanceHost(), *tail]
    if kind is FlowKind.MOVE:
        return [ReserveTarget(), StopOnSource(), UpdateInstanceHost(), *tail]
    if kind is FlowKind.STOP:
        return [ReserveTarget(), StopOnSource(), ParkStopped()]
    if kind is FlowKind.REATTACH:  # storage first: the guest is down only for its reboot
        return [ReserveTarget(), PrepareStorage(), StopInPlace(), StartGuest(), AttachVolumes(),
                VerifyGuest(), FinishFlow()]
    return [ReserveTarget(), *tail]


def _usage(s: Session, host: str, vcpus: int, ram_mb: int) -> None:
    sql.usage(s, host, vcpus, ram_mb)
