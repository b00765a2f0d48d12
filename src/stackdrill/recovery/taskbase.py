"""What a recovery task is: its context, its base class, what it may yield (driver futures
or `Sleep`), its statuses, and the errors that count as a failed step.

Kept apart from the tasks themselves (tasks.py) so that the engine's parts that drive
flows import the machinery without the flow's steps, and each module stays one idea.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Generator
from concurrent.futures import Future
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from sqlalchemy.orm import Session

from stackdrill.api import DriverError, Drivers
from stackdrill.recovery.config import RecoveryConfig
from stackdrill.recovery.journal import Journal
from stackdrill.recovery.result import Phase
from stackdrill.recovery.steps import JournalStep


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
    RESTART = "restart"  # its process died on a host that stays up: started again there


class StepFailed(RuntimeError):
    """A task could not complete; the flow reverts and says why."""


class StorageLost(StepFailed):
    """The server of a volume the flow prepared was fenced meanwhile: neither the
    instance's nor the target's fault. The flow reverts and is tried again at once."""


# What a failed recovery step looks like: the lab refused a driver operation, it gave no
# answer within the operation timeout, or a task found it could not complete. Anything
# else raised inside a flow is a bug (in the engine or a driver) and stops the engine,
# rather than being reverted and retried as if the lab had said no.
STEP_ERRORS: tuple[type[Exception], ...] = (DriverError, TimeoutError, StepFailed)


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

    def commit(self, step: JournalStep, **detail: Any) -> Session:
        """Context manager: DB changes + this flow's journal row in one transaction."""
        return self.rt.journal.step(step, instance=self.instance,  # type: ignore[return-value]
                                    attempt=self.attempt, **detail)

    def done(self, step: JournalStep) -> bool:
        return step.value in self.rt.journal.attempt_steps(self.instance, self.attempt)


class Task(ABC):
    step: ClassVar[JournalStep]
    phase: ClassVar[Phase | None] = None
    requires: ClassVar[tuple[str, ...]] = ()
    provides: ClassVar[tuple[str, ...]] = ()
    revert_on_failure: ClassVar[bool] = False  # a failure may have left effects behind
    # A storage backend acts in this task (promote, connect, release): until the flow's
    # last such task is done, the flow counts against its backends' limit (capacity.py)
    acts_on_storage: ClassVar[bool] = False

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
