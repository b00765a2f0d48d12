"""Per-instance recovery as a flow of small tasks (TaskFlow / Masakari style).

Each task declares the journal step it completes, the report phase it belongs
to and what it `requires` from earlier tasks' outputs. `execute` is a generator:
it yields driver futures (or `Sleep`) and the engine resumes it when they are
done, so one thread drives many flows deterministically. A task finishes by
writing its journal step in the same transaction as its DB change, which is
what lets a restarted engine skip exactly the tasks already done. `revert`
undoes a task's effect on the lab when a later task fails.

`Runtime` is all a task sees of the engine (drivers, journal, config, the clock, the
failed hosts and the start clearance), so a task cannot reach into the engine's state.
What a task is (its context, base class, statuses) lives in taskbase.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from stackdrill.api import VolumePath
from stackdrill.recovery import sql
from stackdrill.recovery.inventory import (
    MigrationStatus,
    TaskState,
    VmState,
)
from stackdrill.recovery.journal import JournalStep
from stackdrill.recovery.result import Phase
from stackdrill.recovery.taskbase import (
    FlowContext,
    FlowKind,
    Sleep,
    StepFailed,
    Task,
    TaskGen,
    gather,
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the tasks


class ReserveTarget(Task):
    """Claim capacity on the target and record the evacuation (Nova's migration row)."""

    step = JournalStep.RESERVED
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

    step = JournalStep.SOURCE_STOPPED
    phase = Phase.SHUTDOWN
    acts_on_storage = True

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
    Nova's equivalent is a hard reboot after the volume's connection info changed.
    A restart after the guest's process died: the dead domain is destroyed first, so that
    nothing of the old copy is left to come back beside the new one (Masakari's instance
    failure flow stops the instance before it starts it)."""

    step = JournalStep.SOURCE_STOPPED
    phase = Phase.SHUTDOWN

    def execute(self, ctx: FlowContext) -> TaskGen:
        began = ctx.rt.now()
        yield ctx.rt.drivers.compute.destroy(ctx.instance, ctx.source)
        with ctx.commit(self.step, began=began) as s:
            sql.instance_task(s, ctx.uuid, TaskState.REBOOTING_HARD.value)


class ParkStopped(Task):
    """Maintenance without a target: leave the instance stopped for its host's boot."""

    step = JournalStep.GUEST_STOPPED

    def execute(self, ctx: FlowContext) -> TaskGen:
        with ctx.commit(self.step, at=ctx.source) as s:
            sql.instance_state(s, ctx.uuid, VmState.STOPPED.value, None)
        yield from ()


class UpdateInstanceHost(Task):
    """Nova's rebuild-on-evacuate: the instance belongs to the target from here on."""

    step = JournalStep.DB_UPDATED
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

    step = JournalStep.STORAGE_READY
    phase = Phase.STORAGE
    requires = ("target",)
    provides = ("paths",)
    acts_on_storage = True

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

    step = JournalStep.STARTED
    phase = Phase.START
    requires = ("paths",)
    revert_on_failure = True

    def execute(self, ctx: FlowContext) -> TaskGen:
        while (why := ctx.rt.start_clearance(ctx)) is not None:
            log.info("%s waits before starting on %s: %s", ctx.instance, ctx.target, why)
            yield Sleep(ctx.rt.config.poll_s)
        compute = ctx.rt.drivers.compute
        steps = ctx.rt.journal.attempt_steps(ctx.instance, ctx.attempt)
        requested = steps.get(JournalStep.START_REQUESTED.value)
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
            with ctx.commit(JournalStep.START_REQUESTED, target=ctx.target):
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

    step = JournalStep.ATTACHED
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

    step = JournalStep.NETWORK_PLUGGED
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

    step = JournalStep.VERIFIED
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

    step = JournalStep.DONE

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
        # Nova's hard reboot plugs the VIFs again (libvirt _hard_reboot ->
        # _create_domain_and_network): a guest cleaned off its returned host has no port
        return [ReserveTarget(), PrepareStorage(), StopInPlace(), StartGuest(), AttachVolumes(),
                PlugNetwork(), VerifyGuest(), FinishFlow()]
    if kind is FlowKind.RESTART:  # the dead copy confirmed gone, then started on its host
        return [ReserveTarget(), StopInPlace(), *tail]
    return [ReserveTarget(), *tail]


def _usage(s: Session, host: str, vcpus: int, ram_mb: int) -> None:
    sql.usage(s, host, vcpus, ram_mb)
