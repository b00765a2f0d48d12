"""Per-instance flows: journaled steps (reserve -> DB -> storage -> start -> attach ->
network -> verify -> done) run as generators, several in flight, each resumable from the
journal after a kill, undone in reverse when a step fails, retried a bounded number of
times, and abandoned when its target host fails (a new attempt follows).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from stackdrill.recovery import sql
from stackdrill.recovery.base import EngineBase, Proc
from stackdrill.recovery.hoststate import FAILED_STATES
from stackdrill.recovery.inventory import Instance, Migration, MigrationStatus, VmState
from stackdrill.recovery.journal import FLOW_END, EngineKilled, Step
from stackdrill.recovery.tasks import (
    FlowContext,
    FlowKind,
    Sleep,
    StepFailed,
    Task,
    TaskGen,
    TaskStatus,
    build_flow,
)

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 3
# A failure in these tasks is the target's fault: the next attempt avoids that host.
TARGET_TASKS = frozenset({"StartGuest", "AttachVolumes", "PlugNetwork", "VerifyGuest"})


class FlowRunner(EngineBase):
    """Start, resume, drive and close the journaled per-instance flows."""

    def _new_flow(self, kind: FlowKind, name: str, source: str, target: str,
                  served_by: dict[str, str], attach: dict[str, str]) -> None:
        attempt = 1 + max((r.attempt for r in self.journal.for_instance(name)), default=0)
        info = self._info[name]
        ctx = FlowContext(kind, name, info.uuid, attempt, source, target, info.volumes,
                          info.has_port, self,
                          {"target": target, "served_by": served_by, "attach": attach})
        self._launch(ctx)
        self._emit("flow-started", f"{name}: {kind.value} {source} -> {target}", source, name,
                   target=target, attempt=attempt)

    def _launch(self, ctx: FlowContext) -> None:
        tasks = build_flow(ctx.kind)
        self._flows[ctx.instance] = Proc(self._run_flow(ctx, tasks), ctx, tasks, since=self.now())

    def _resume_flows(self) -> None:
        """Flows the journal shows started and not ended: pick them up where they stopped."""
        for name in sorted(self._where):
            if name in self._flows:
                continue
            records = self.journal.for_instance(name)
            if not records:
                continue
            attempt = records[-1].attempt
            steps = self.journal.attempt_steps(name, attempt)
            reserved = steps.get(Step.RESERVED.value)
            if reserved is None or any(s.value in steps for s in FLOW_END):
                continue
            info = self._info[name]
            values: dict[str, Any] = {}
            for rec in records:
                if rec.attempt == attempt:
                    values.update(rec.detail)
            d = reserved.detail
            ctx = FlowContext(FlowKind(d["kind"]), name, info.uuid, attempt, d["source"],
                              d["target"], info.volumes, info.has_port, self, values)
            self._launch(ctx)
            self._emit("flow-resumed", f"{name}: resuming attempt {attempt} from the journal",
                       ctx.source, name)

    def _run_flow(self, ctx: FlowContext, tasks: list[Task]) -> TaskGen:
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
        except (EngineKilled, GeneratorExit):
            raise
        except Exception as exc:
            if current is not None:
                current.status = TaskStatus.FAILURE
            reason = f"{type(current).__name__ if current else 'flow'} failed: {exc}"
            undone = True
            if current is not None and current.revert_on_failure and \
                    Step.START_REQUESTED.value in self.journal.attempt_steps(ctx.instance,
                                                                              ctx.attempt):
                completed.append(current)  # the start may have happened: undo it too
            for task in reversed(completed):
                try:
                    yield from task.revert(ctx)
                    task.status = TaskStatus.REVERTED
                except (EngineKilled, GeneratorExit):
                    raise
                except Exception as rexc:  # a partial start we cannot undo: never retry
                    undone = False
                    reason += f"; revert of {type(task).__name__} failed: {rexc}"
            self._end_flow(ctx, reason, undone=undone, cascade=False,
                           blame_target=type(current).__name__ in TARGET_TASKS)

    def _end_flow(self, ctx: FlowContext, reason: str, undone: bool, cascade: bool,
                  blame_target: bool = False) -> None:
        """Close a flow that did not finish; put the inventory back where the lab really is."""
        steps = self.journal.attempt_steps(ctx.instance, ctx.attempt)
        failures = sum(1 for r in self.journal.for_instance(ctx.instance)
                       if r.step == Step.FLOW_ABORTED.value and not r.detail.get("cascade"))
        started = Step.START_REQUESTED.value in steps
        # a resume is tried again only if it failed before starting anything (its storage
        # was not ready yet, e.g. a replica that has not met its peer since the boot)
        retry = cascade or (undone and failures + 1 < MAX_ATTEMPTS
                            and (ctx.kind is not FlowKind.RESUME or not started))
        target_dead = self._status.get(ctx.target) in FAILED_STATES
        moved = ctx.target != ctx.source
        reserved = Step.RESERVED.value in steps and moved
        updated = Step.DB_UPDATED.value in steps
        host = ctx.target if updated else ctx.source
        give_back = reserved and (not updated or (not target_dead and (undone or not started)))
        if give_back:
            host = ctx.source
        vm_state = VmState.ACTIVE.value if retry else VmState.ERROR.value
        if retry and ctx.kind is FlowKind.RESUME:
            vm_state = VmState.STOPPED.value  # still to be resumed, after the back-off
        if ctx.kind in (FlowKind.MOVE, FlowKind.STOP) and Step.SOURCE_STOPPED.value in steps \
                and not started:
            vm_state = VmState.STOPPED.value
        if give_back and moved and ctx.kind is FlowKind.EVACUATE and (undone or not started) \
                and self._status.get(ctx.source) not in FAILED_STATES:
            # the source rejoined meanwhile, and a rejoined host runs none of its evacuated
            # guests: handed back there, the guest is stopped (resumed by a flow), not active
            vm_state = VmState.STOPPED.value
        detail: dict[str, Any] = {"reason": reason, "host_after": host, "vm_state": vm_state,
                                  "cascade": cascade, "resumable": undone or not started,
                                  "kind": ctx.kind.value}
        if blame_target:
            detail["exclude"] = ctx.target
        step = Step.FLOW_ABORTED if retry else Step.FLOW_FAILED
        with self.journal.step(step, instance=ctx.instance, attempt=ctx.attempt, **detail) as s:
            inst = s.get(Instance, ctx.uuid)
            assert inst is not None
            if give_back:
                _usage(s, ctx.target, -inst.vcpus, -inst.memory_mb)
                if updated:
                    _usage(s, ctx.source, inst.vcpus, inst.memory_mb)
            inst.host = inst.node = host
            inst.vm_state, inst.task_state = vm_state, None
            s.execute(update(Migration).where(Migration.instance_uuid == ctx.uuid,
                                              Migration.status == MigrationStatus.ACCEPTED.value)
                      .values(status=MigrationStatus.FAILED.value))
        self._emit("flow-aborted" if retry else "flow-failed", f"{ctx.instance}: {reason}",
                   ctx.source, ctx.instance)

    def _abandon_dead_targets(self) -> None:
        """Cascade: a flow whose target just failed is abandoned; a new attempt follows."""
        for name, proc in sorted(self._flows.items()):
            ctx = proc.ctx
            if ctx is None or self._status.get(ctx.target) not in FAILED_STATES:
                continue
            proc.gen.close()
            del self._flows[name]
            self._end_flow(ctx, f"target {ctx.target} failed during recovery", undone=False,
                           cascade=True)

    def _pump(self) -> None:
        """Resume every generator whose future completed or whose sleep ended."""
        progressed = True
        while progressed:
            progressed = False
            for key, proc in sorted(self._flows.items()):
                if self._advance(proc):
                    progressed = True
                if proc.finished:
                    self._flows.pop(key, None)
            for key, proc in sorted(self._procs.items()):
                if self._advance(proc):
                    progressed = True
                if proc.finished:
                    self._procs.pop(key, None)

    def _advance(self, proc: Proc) -> bool:
        now = self.now()
        moved = False
        while not proc.finished:
            waiting = proc.waiting
            send: Any = None
            throw: BaseException | None = None
            if isinstance(waiting, Sleep):
                if now < proc.since + waiting.seconds:
                    return moved
            elif waiting is not None:
                if not waiting.done():
                    if now - proc.since < self.config.op_timeout_s:
                        return moved
                    throw = TimeoutError(f"no answer within {self.config.op_timeout_s:.0f} s")
                elif waiting.exception() is not None:
                    throw = waiting.exception()
                else:
                    send = waiting.result()
            try:
                proc.waiting = proc.gen.throw(throw) if throw is not None else proc.gen.send(send)
                proc.since = now
            except StopIteration:
                proc.finished = True
            moved = True
        return moved


def _usage(s: Session, host: str, vcpus: int, ram_mb: int) -> None:
    sql.usage(s, host, vcpus, ram_mb)
