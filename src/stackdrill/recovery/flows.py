"""Per-instance flows: journaled steps (reserve -> DB -> storage -> start -> attach ->
network -> verify -> done) run as generators, several in flight, each resumable from the
journal after a kill, undone in reverse when a step fails, and abandoned when its target
host fails (`flowend` decides what follows).
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

from stackdrill.recovery.flowend import FlowCloser
from stackdrill.recovery.hoststate import FENCED_STATES
from stackdrill.recovery.shared import Shared
from stackdrill.recovery.state import Proc
from stackdrill.recovery.steps import FLOW_END, JournalStep
from stackdrill.recovery.taskbase import (
    STEP_ERRORS,
    FlowContext,
    FlowKind,
    Runtime,
    StepFailed,
    StorageLost,
    Task,
    TaskGen,
    TaskStatus,
    Yieldable,
)
from stackdrill.recovery.tasks import build_flow

log = logging.getLogger(__name__)
# A failure in these tasks is the target's fault: the next attempt avoids that host.
TARGET_TASKS = frozenset({"StartGuest", "AttachVolumes", "PlugNetwork", "VerifyGuest"})


class FlowRunner:
    """Start, resume and drive the journaled per-instance flows. `runtime` is what the
    tasks see of the engine (`taskbase.Runtime`)."""

    def __init__(self, shared: Shared, runtime: Runtime, closer: FlowCloser) -> None:
        self.clock, self.journal, self.state = shared.clock, shared.journal, shared.state
        self.emit = shared.emit
        self.runtime = runtime
        self.closer = closer
        self._abandoning: set[str] = set()  # flows undoing themselves after StorageLost
        # instance -> (the paths its flow prepared, the hosts serving them): asked of
        # every flow every tick, changed once per flow
        self._served: dict[str, tuple[object, frozenset[str]]] = {}

    def start(self, kind: FlowKind, name: str, source: str, target: str,
              served_by: dict[str, str], attach: dict[str, str]) -> None:
        attempt = 1 + max((r.attempt for r in self.journal.for_instance(name)), default=0)
        info = self.state.info[name]
        ctx = FlowContext(kind, name, info.uuid, attempt, source, target, info.volumes,
                          info.has_port, self.runtime,
                          {"target": target, "served_by": served_by, "attach": attach})
        self._launch(ctx)
        self.emit("flow-started", f"{name}: {kind.value} {source} -> {target}", source, name,
                  target=target, attempt=attempt)

    def _launch(self, ctx: FlowContext) -> None:
        self._abandoning.discard(ctx.instance)
        tasks = build_flow(ctx.kind)
        self.state.flows[ctx.instance] = Proc(self._run(ctx, tasks), ctx, tasks,
                                              since=self.clock.now())

    def resume(self) -> None:
        """Flows the journal shows started and not ended: pick them up where they stopped."""
        for name in sorted(self.state.where):
            if name in self.state.flows:
                continue
            records = self.journal.for_instance(name)
            if not records:
                continue
            attempt = records[-1].attempt
            steps = self.journal.attempt_steps(name, attempt)
            reserved = steps.get(JournalStep.RESERVED.value)
            if reserved is None or any(s.value in steps for s in FLOW_END):
                continue
            info = self.state.info[name]
            values: dict[str, Any] = {}
            for rec in records:
                if rec.attempt == attempt:
                    values.update(rec.detail)
            d = reserved.detail
            ctx = FlowContext(FlowKind(d["kind"]), name, info.uuid, attempt, d["source"],
                              d["target"], info.volumes, info.has_port, self.runtime, values)
            self._launch(ctx)
            self.emit("flow-resumed", f"{name}: resuming attempt {attempt} from the journal",
                      ctx.source, name)

    def _run(self, ctx: FlowContext, tasks: list[Task]) -> TaskGen:
        done = self.journal.attempt_steps(ctx.instance, ctx.attempt)
        completed: list[Task] = []
        current: Task | None = None
        try:
            for task in tasks:
                current = task
                if task.step.value in done:
                    task.status = TaskStatus.SUCCESS
                    completed.append(task)
                    continue
                missing = [r for r in task.requires if r not in ctx.values]
                if missing:
                    raise StepFailed(f"{type(task).__name__} lacks {', '.join(missing)}")
                task.status = TaskStatus.RUNNING
                yield from task.execute(ctx)
                task.status = TaskStatus.SUCCESS
                completed.append(task)
        except STEP_ERRORS as exc:
            yield from self._fail(ctx, current, completed, exc)

    def _fail(self, ctx: FlowContext, current: Task | None, completed: list[Task],
              exc: Exception) -> TaskGen:
        """Undo what the flow did, in reverse, and close it with the reason."""
        name = type(current).__name__ if current is not None else "flow"
        reason = f"{name} failed: {exc}"
        if current is not None:
            current.status = TaskStatus.FAILURE
            if current.revert_on_failure and ctx.done(JournalStep.START_REQUESTED):
                completed.append(current)  # the start may have happened: undo it too
        undone, why = yield from _revert(ctx, completed)
        lost = isinstance(exc, StorageLost)
        self.closer.end(ctx, reason + why, undone=undone, cascade=lost,
                        blame_target=not lost and name in TARGET_TASKS)

    def abandon_lost_storage(self) -> None:
        """A flow whose prepared volume server was fenced meanwhile waits on I/O that never
        comes back (its guest's verification times out only after minutes), holding a flow
        slot the storage failover of that very server needs (seed 2044: one slot, an
        evacuation verifying against the dead sto1, every reattachment queued behind it).
        It is undone now and tried again at once, on a live replica."""
        fenced = {h for h, st in self.state.status.items() if st in FENCED_STATES}
        if not fenced or not self.state.flows:
            return
        now = self.clock.now()
        hit = sorted((name, proc, sorted(servers & fenced))
                     for name, proc in self.state.flows.items()
                     if proc.ctx is not None and name not in self._abandoning
                     and not (servers := self._servers(proc.ctx)).isdisjoint(fenced))
        for name, proc, dead in hit:  # (a throw changes no other flow's servers)
            self._abandoning.add(name)
            lost = StorageLost(f"volume server {', '.join(dead)} was fenced during recovery")
            try:
                proc.wait_on(proc.gen.throw(lost), now)
            except StopIteration:
                proc.finished = True

    def _servers(self, ctx: FlowContext) -> frozenset[str]:
        """The hosts serving the volumes this flow prepared (none before PrepareStorage)."""
        paths: dict[str, dict[str, str]] | None = ctx.values.get("paths")
        if not paths:
            return frozenset()
        cached = self._served.get(ctx.instance)
        if cached is None or cached[0] is not paths:
            cached = self._served[ctx.instance] = (paths, frozenset(
                str(p["served_by"]) for p in paths.values() if p.get("served_by")))
        return cached[1]

    def abandon_dead_targets(self) -> None:
        """Cascade: a flow whose target just failed is abandoned; a new attempt follows."""
        flows = self.state.flows
        failed = self.state.failed_hosts()
        if not failed or not flows:
            return
        hit = sorted(name for name, proc in flows.items()
                     if proc.ctx is not None and proc.ctx.target in failed)
        for name in hit:
            proc = flows[name]
            ctx = proc.ctx
            assert ctx is not None
            proc.gen.close()
            del flows[name]
            self.closer.end(ctx, f"target {ctx.target} failed during recovery", undone=False,
                            cascade=True)


def _revert(ctx: FlowContext,
            completed: list[Task]) -> Generator[Yieldable, Any, tuple[bool, str]]:
    """Revert completed tasks, last first; (whether all were undone, what failed)."""
    undone, why = True, ""
    for task in reversed(completed):
        try:
            yield from task.revert(ctx)
            task.status = TaskStatus.REVERTED
        except STEP_ERRORS as exc:  # a partial start we cannot undo: never retry
            undone = False
            why += f"; revert of {type(task).__name__} failed: {exc}"
    return undone, why
