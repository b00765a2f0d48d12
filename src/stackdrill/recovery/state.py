"""The engine's state, one explicit object that every collaborator receives.

What the engine knows between ticks lives here and nowhere else: host statuses (moved
only by the journal, through the host state machine), where the inventory has each
instance with the indexes the scheduler reads every tick, the last health seen, fences,
flows and host procedures in flight, suspects, held storage hosts and guests withheld at
boot. Everything in it is either read back from the journal and the inventory at start
or rebuilt by the monitor, so a restarted engine holds the same state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from stackdrill.api import HostHealth
from stackdrill.recovery.fence import FenceAttempt
from stackdrill.recovery.hoststate import FAILED_STATES, HostStatus
from stackdrill.recovery.inventory import BlockDeviceMapping, Instance, VmState, Volume
from stackdrill.recovery.result import JournalRecord
from stackdrill.recovery.steps import JournalStep
from stackdrill.recovery.taskbase import FlowContext, Task, TaskStatus, Yieldable


@dataclass(frozen=True)
class InstInfo:
    """What never changes about an instance during a run (read from the inventory)."""

    name: str
    uuid: str
    vcpus: int
    ram_mb: int
    group: str | None
    volumes: tuple[str, ...]
    has_port: bool


@dataclass
class Proc:
    """A running generator (a flow or a host procedure) and what it waits for."""

    gen: Generator[Yieldable, Any, None]
    ctx: FlowContext | None = None
    tasks: list[Task] = field(default_factory=list)
    waiting: Yieldable | None = None
    since: float = 0.0
    finished: bool = False
    woken: bool = False  # the future it waits on has completed (set by its callback)
    # Procs woken so far, all engines: the pump looks again only when one woke meanwhile
    # (a hint: a lost increment from another thread delays a proc to the next pump)
    wakes: ClassVar[int] = 0
    storage_tasks: list[Task] = field(init=False, repr=False)  # those acting on storage
    released: bool = field(init=False, repr=False)  # its storage actions are over, for good

    def __post_init__(self) -> None:
        self.storage_tasks = [t for t in self.tasks if t.acts_on_storage]
        self.released = False

    def wait_on(self, what: Yieldable | None, now: float) -> None:
        """Wait for what the generator yielded. A future wakes this proc through its
        callback, so the engine's pump need not ask every waiting future each time."""
        self.waiting, self.since, self.woken = what, now, False
        if isinstance(what, Future):
            what.add_done_callback(self._wake)

    def _wake(self, future: Future[Any]) -> None:
        if future is self.waiting:  # not a future it stopped waiting for
            self.woken = True
            Proc.wakes += 1

    def holds_storage(self) -> bool:
        """Whether this flow still counts against its storage backends: one of its
        storage actions (promote, connect, release) is still to come or under way. Once
        none is, none will be again (a task's status only moves on: to success, then at
        most to reverted), so that answer is kept: capacity asks for every flow each tick."""
        if self.released:
            return False
        if any(t.status in _ACTING for t in self.storage_tasks):
            return True
        self.released = True
        return False


_ACTING = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.FAILURE})


@dataclass
class EngineState:
    hosts: list[str]  # compute hosts
    storage_hosts: list[str]  # hosts serving volumes to others (not compute): failover only
    status: Mapping[str, HostStatus]  # the journal's HostStates: read here, moved there
    since: float  # when monitoring began: the age of a host never heard from
    started_at: float
    where: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (host, vm_state)
    hosted: dict[str, set[str]] = field(default_factory=dict)  # host -> instances placed there
    inactive: set[str] = field(default_factory=set)  # instances whose vm_state is not active
    grouped: list[str] = field(default_factory=list)  # instances in a server group, sorted
    info: dict[str, InstInfo] = field(default_factory=dict)
    health: dict[str, HostHealth] = field(default_factory=dict)
    fences: dict[str, FenceAttempt] = field(default_factory=dict)
    flows: dict[str, Proc] = field(default_factory=dict)  # instance -> its flow in flight
    procs: dict[str, Proc] = field(default_factory=dict)  # host -> cleanup or reboot
    suspects: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)  # storage hosts not fenced: last replica
    withheld: deque[tuple[str, str]] = field(default_factory=deque)  # (guest, host) not resumed

    def failed_hosts(self) -> set[str]:
        return {h for h, st in self.status.items() if st in FAILED_STATES}

    def draining(self) -> set[str]:
        return {h for h, st in self.status.items() if st is HostStatus.MAINTENANCE}

    def place(self, name: str, host: str, vm_state: str) -> None:
        """Where the inventory has an instance, with the per-host and inactive indexes the
        scheduler reads every tick (so a tick does not scan every instance)."""
        old = self.where.get(name)
        if old is not None:
            self.hosted.get(old[0], set()).discard(name)
        self.where[name] = (host, vm_state)
        self.hosted.setdefault(host, set()).add(name)
        if vm_state == VmState.ACTIVE.value:
            self.inactive.discard(name)
        else:
            self.inactive.add(name)

    def load_instances(self, sessions: sessionmaker[Session]) -> None:
        with sessions() as s:
            vols: dict[str, list[str]] = {}
            for uuid, vname in s.execute(
                    select(BlockDeviceMapping.instance_uuid, Volume.display_name)
                    .join(Volume, Volume.id == BlockDeviceMapping.volume_id)
                    .order_by(BlockDeviceMapping.id)):
                vols.setdefault(uuid, []).append(vname)
            for inst in s.scalars(select(Instance)):
                self.info[inst.display_name] = InstInfo(
                    inst.display_name, inst.uuid, inst.vcpus, inst.memory_mb, inst.server_group,
                    tuple(vols.get(inst.uuid, [])),
                    inst.mac is not None or inst.overlay is not None)
                self.place(inst.display_name, inst.host, inst.vm_state)
        self.grouped = sorted(n for n, i in self.info.items() if i.group)

    def apply(self, record: JournalRecord) -> None:
        """Follow a journal record's effect on where an instance is (host statuses are
        moved by the journal itself)."""
        if record.instance is None:
            if record.step == JournalStep.HOST_REJOINED.value:
                for name in record.detail.get("resume", []):
                    self.place(name, self.where[name][0], VmState.STOPPED.value)
            return
        name = record.instance
        if name not in self.where:
            return
        host, vm = self.where[name]
        d = record.detail
        step = record.step
        if step == JournalStep.DB_UPDATED.value:
            host = d["at"]
        elif step == JournalStep.DONE.value:
            vm = VmState.ACTIVE.value
        elif step == JournalStep.GUEST_STOPPED.value:
            vm = VmState.STOPPED.value
        elif step in (JournalStep.FLOW_ABORTED.value, JournalStep.FLOW_FAILED.value):
            host, vm = d["host_after"], d["vm_state"]
        elif step in (JournalStep.UNRECOVERABLE.value, JournalStep.RESTARTS_EXHAUSTED.value):
            vm = VmState.ERROR.value
        self.place(name, host, vm)
