"""Reopen a named lab for one CLI command.

A sim lab lives in no process between commands: it is rebuilt and replayed step by step
through the drill player, each step at the lab time it was given and to its end, exactly
as the commands that gave them ran; a new step goes through the same player. A lab with
real resources (netns, libvirt) is held by its lab keeper, the process `stackdrill up`
started, and each command asks the keeper (`stackdrill.cli.keeper`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stackdrill.api import CommandResult, Observation
from stackdrill.backends import backend_class, lifetime
from stackdrill.checks import Evidence
from stackdrill.cli.labcore import DryRun, LabCore, Progress
from stackdrill.cli.labstore import LabRecord
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.recovery import RecoveryResult
from stackdrill.recovery.dburl import InventoryTarget, inventory_url, run_namespace
from stackdrill.topology import Topology, load_topology


def topology_of(record: LabRecord) -> Topology:
    """The lab's topology: its file, or for a lab kept by `run --keep` its drill's (which
    may be inline or changed by topology_overrides)."""
    if record.kept_from is not None:
        from stackdrill.drill import load_drill

        return load_drill(record.kept_from.drill).topology
    return load_topology(record.topology)


class LabSession(ABC):
    """A lab reopened from its record; `apply` carries out one more step and records it."""

    def __init__(self, record: LabRecord, topology: Topology) -> None:
        self.record = record
        self.topology = topology
        self.last_recovery: RecoveryResult | None = None

    @abstractmethod
    def now(self) -> float:
        """The lab's time."""

    def where(self) -> str | None:
        """Where the lab lives between commands, for `status` (None: in no process)."""
        return None

    @abstractmethod
    def observe(self) -> Observation: ...

    @abstractmethod
    def last_command(self) -> tuple[str, CommandResult] | None:
        """The label and result of the operator command run last."""

    @abstractmethod
    def evidence(self) -> Evidence:
        """What the checks judge: the observation, every write and what the volumes hold."""

    @abstractmethod
    def idle(self, spec: RecoverSpec) -> bool:
        """Nothing for the engine to do: every compute host heartbeats, every instance runs."""

    @abstractmethod
    def dry_run(self, spec: RecoverSpec) -> DryRun: ...

    @abstractmethod
    def _carry_out(self, step: Step, progress: Progress | None) -> RecoveryResult | None: ...

    @abstractmethod
    def _pass_time(self, seconds: float) -> None: ...

    def apply(self, step: Step, progress: Progress | None = None) -> LabRecord:
        """Carry the step out now (a recovery's events go to `progress`) and record it."""
        result = self._carry_out(step, progress)
        if result is not None:
            self.last_recovery = result
        self.record = self.record.with_step(step, self.now())
        return self.record

    def wait(self, seconds: float) -> LabRecord:
        """Let lab time pass; no step is recorded, only the time reached."""
        self._pass_time(seconds)
        self.record = self.record.at(self.now())
        return self.record


class LocalSession(LabSession):
    """A lab that lives in this process (the simulator): rebuilt and replayed."""

    def __init__(self, record: LabRecord, workdir: Path,
                 inventory: InventoryTarget | None = None, inventory_url: str | None = None
                 ) -> None:
        super().__init__(record, topology_of(record))
        lab = backend_class(record.backend)().create(self.topology, lab_name=record.name,
                                                      seed=record.seed)
        self.core = LabCore(lab, self.topology, workdir, inventory=inventory,
                            inventory_url=inventory_url)
        for step in record.steps:
            self.core.apply(step)
        self.core.player.wait_until(record.now)

    def now(self) -> float:
        return self.core.now()

    def observe(self) -> Observation:
        return self.core.observe()

    def evidence(self) -> Evidence:
        return self.core.evidence()

    def last_command(self) -> tuple[str, CommandResult] | None:
        return self.core.last_command()

    def idle(self, spec: RecoverSpec) -> bool:
        return self.core.idle(spec)

    def dry_run(self, spec: RecoverSpec) -> DryRun:
        return self.core.dry_run(spec)

    def _carry_out(self, step: Step, progress: Progress | None) -> RecoveryResult | None:
        return self.core.apply(step, progress)

    def _pass_time(self, seconds: float) -> None:
        self.core.player.wait_until(self.now() + seconds)


@contextmanager
def open_session(record: LabRecord,
                 inventory: InventoryTarget | None = None) -> Iterator[LabSession]:
    """The lab reopened for one command. In this process: with a scratch directory and an
    inventory of its own (where `inventory` says) removed when the command ends, however
    it ends. A kept real lab's keeper chose its inventory when it started."""
    if not backend_class(record.backend).capabilities.in_process:
        from stackdrill.cli.keeper.client import KeeperSession

        with KeeperSession.connect(record) as remote:
            yield remote
        return
    target = inventory or inventory_url()
    with lifetime.scratch_dir("lab") as workdir, \
            run_namespace(target, workdir, "inventory") as url:
        yield LocalSession(record, workdir, target, url)
