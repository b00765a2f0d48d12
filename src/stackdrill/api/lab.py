"""A lab and a backend, as the drill runner, the engine and the CLI see them.

Everything a caller may ask of a lab is declared here, so nothing is reached through
`getattr` and every backend answers the same questions (the contract suite in
tests/contract holds each backend to it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from stackdrill.api.clock import Clock
from stackdrill.api.commands import Command
from stackdrill.api.drivers import Drivers
from stackdrill.api.events import Traced, TraceWriter, render_lines, trace_sha256
from stackdrill.api.evidence import CommandResult, Observation, StoredRecord, WriteOp
from stackdrill.api.limits import Capabilities
from stackdrill.errors import InfrastructureError, UnsupportedError
from stackdrill.faults import Fault
from stackdrill.topology import Topology


class ScheduledActionFailed(InfrastructureError):
    """A scheduled action (a fault, a heal, a command) raised: the drill did not do what its
    schedule says, so the lab cannot speak for the recovery under test. Raised where the
    caller next waits on the lab's clock, on every backend."""


class Lab(ABC):
    """A topology brought to life. Always destroyed, even on errors and Ctrl-C."""

    topology: Topology
    name: str
    backend: str
    tracer: TraceWriter  # every event the lab emits, in order

    @property
    @abstractmethod
    def clock(self) -> Clock: ...

    @property
    @abstractmethod
    def drivers(self) -> Drivers: ...

    @abstractmethod
    def inject(self, fault: Fault) -> None:
        """Make the fault true now."""

    @abstractmethod
    def heal(self, fault: Fault) -> None:
        """Undo exactly what `inject` did."""

    @abstractmethod
    def call_at(self, time: float, action: Callable[[], None], label: str) -> None:
        """Run `action` at lab time `time` (faults during a recovery; never blocks). An
        action that fails is raised where the caller next waits on the clock."""

    def execute(self, command: Command, label: str) -> None:
        """Run an operator command from a drill (lvm, drbdadm, a probe); its result goes to
        `command_results()` under `label`. Backends that cannot run it say so."""
        raise UnsupportedError(f"backend {self.backend!r} cannot run {command.tool} "
                               f"{command.op}")

    def quiesce(self) -> None:
        """Stop the workloads before the final read, so real backends' writers do not race
        the checks (a no-op where the lab's clock stops by itself, as in the simulator)."""
        return None

    def command_results(self) -> dict[str, CommandResult]:
        """label -> result of every operator command run so far."""
        return {}

    @abstractmethod
    def history(self) -> list[WriteOp]:
        """Every write the workloads invoked, with its outcome."""

    @abstractmethod
    def stored_records(self, volume: str) -> dict[int, StoredRecord]:
        """The records on the volume as its current primary replica holds them (seq -> record)."""

    @abstractmethod
    def observe(self) -> Observation: ...

    def predicted_lost_writes(self) -> int | None:
        """How many acknowledged writes the lab's own model says were lost (DRBD protocol
        A's in-flight writes at a failover); None where the backend cannot predict it."""
        return None

    def events(self) -> list[Traced]:
        """Every event so far, with its lab time (the checks' ground truth)."""
        return self.tracer.events()

    def trace(self) -> list[str]:
        """The events as text, one line each (byte-identical for the same seed on sim)."""
        return render_lines(self.events())

    def trace_sha256(self) -> str:
        return trace_sha256(self.events())

    @abstractmethod
    def destroy(self) -> None:
        """Tear everything down; safe to call twice."""

    def keep(self) -> None:
        """Leave the lab standing after this process exits, on purpose (`run --keep`): a
        backend whose labs outlive their owner only by record (netns slots) marks it kept,
        so no other run reclaims it and only `down --lab NAME` removes it. Nothing to do
        where the lab's resources outlive the process anyway (libvirt domains)."""
        return None

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


@dataclass(frozen=True)
class LabOptions:
    """What a drill asks of every backend besides the topology."""

    write_interval_s: float = 2.0  # each workload writes one record per interval
    writers: frozenset[str] | None = None  # instances running a workload (None: all)
    # where a backend whose bring-up takes minutes (real guests) says what it is doing
    progress: Callable[[str], None] | None = field(default=None, compare=False)


class Backend(ABC):
    """A way to bring a topology to life."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @classmethod
    def available(cls) -> str | None:
        """None when this machine can run the backend, else the reason it cannot."""
        return None

    @abstractmethod
    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        """Bring the lab up."""

    @classmethod
    def teardown(cls, lab_name: str) -> list[str]:
        """`stackdrill down --lab NAME`: remove what is left of a lab of that name that no
        process owns any more; the names of what was removed."""
        return []

    @classmethod
    def cleanup_all(cls) -> list[str]:
        """`stackdrill down --all`: remove every leftover of this backend's labs whose
        owning process is gone, never anything it did not create."""
        return []

    @classmethod
    def kept_labs(cls) -> list[str]:
        """Names of this backend's labs kept on purpose on this machine (`Lab.keep`),
        whichever checkout or process kept them: for `status` and `down --all
        --include-kept`."""
        return []

    @classmethod
    def describe_kept(cls, lab_name: str) -> str | None:
        """For `status`: how to reach the kept lab(s) called `lab_name` and what still runs
        in them (several lines of text); None when no such lab is kept here."""
        return None
