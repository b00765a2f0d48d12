"""Play schedule steps on a lab: the one player for drills and named labs.

A drill is a timeline: `play` schedules every fault, heal and command with
`Lab.call_at`, so they happen while a recovery runs, then runs the recover steps in
order. A named lab gets one step per CLI command, each after the previous one ended:
`apply` carries a step out now and returns when it is done. Both go through the same
actions, so a heal always finds its inject by id and a recovery is built the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from stackdrill.api import Lab, Observation
from stackdrill.api.commands import command_label
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.errors import LabStateError
from stackdrill.faults import Fault, describe
from stackdrill.recovery import Mode, RecoveryEngine, RecoveryEvent, RecoveryResult
from stackdrill.topology import Topology

# (injected at, fault, healed at): what the report's fault lane and RTOs read
FaultSpan = tuple[float, Fault, float | None]
Action = Callable[[], None]
COMMAND_S = 600.0  # the longest a named lab's operator command may take


class Player:
    """Carries schedule steps out on one lab and keeps what they did."""

    def __init__(self, lab: Lab, topology: Topology, workdir: Path, *,
                 on_event: Callable[[RecoveryEvent], None] | None = None,
                 progress: Callable[[str], None] | None = None,
                 inventory: str | None = None) -> None:
        self.lab = lab
        self.topology = topology
        self.workdir = workdir
        # the engine's inventory: one per lab, as in a real cloud (recovery.dburl decides
        # where; by default a SQLite file in the workdir)
        self.inventory = inventory or f"sqlite:///{workdir / 'inventory.sqlite'}"
        self.on_event = on_event
        self.progress = progress or (lambda _msg: None)
        self.fault_log: list[FaultSpan] = []
        self.recoveries: list[RecoveryResult] = []
        self.checkpoints: dict[str, Observation] = {}  # observe step label -> what it saw
        self._faults: dict[str, Fault] = {}  # inject id -> its fault, for heals
        self._open: dict[str, int] = {}  # inject id -> its unhealed entry in fault_log
        self._steps = 0  # steps handled so far: names unlabelled commands
        self.last_command: str | None = None  # label of the command `apply` ran last

    def play(self, schedule: Iterable[Step], end: float) -> None:
        """A drill's timeline: faults, heals and commands at their times, recoveries in
        order, each engine watching until `end`; returns at lab time `end`."""
        recoveries = []
        for step in schedule:
            if step.recover is None:
                action, label = self._action(step)
                self.lab.call_at(step.at, action, label)
            else:
                self._steps += 1
                recoveries.append(step)
        for step in sorted(recoveries, key=lambda s: s.at):
            assert step.recover is not None
            self.wait_until(step.at)
            self.recover(step.recover, until=end, stop_when_idle=False)
        self.wait_until(end)

    def apply(self, step: Step) -> RecoveryResult | None:
        """A named lab's step: carried out at its time, to its end. A recover step's
        engine returns once every failure it saw is handled, or after its budget."""
        self.wait_until(step.at)
        if step.run is not None:
            self.last_command = command_label(self._steps, step.run)
        if step.recover is None:
            action, _label = self._action(step)
            action()
            if self.last_command is not None and step.run is not None:
                self._await_result(self.last_command)
            return None
        self._steps += 1
        return self.recover(step.recover, until=step.at + step.recover.budget_s,
                            stop_when_idle=True)

    def _await_result(self, label: str) -> None:
        """A command runs to its end (the simulator's take lab time; real tools return
        when done), bounded by COMMAND_S of lab time."""
        clock = self.lab.clock
        deadline = clock.now() + COMMAND_S
        while label not in self.lab.command_results() and clock.now() < deadline:
            clock.sleep(0.2)

    def recall(self, steps: Iterable[Step]) -> None:
        """Steps another process already carried out on this lab (one with real resources,
        reattached): remember their fault ids so that a later heal finds its fault."""
        for step in steps:
            if step.inject is not None and step.id is not None:
                self._faults[step.id] = step.inject
            self._steps += 1

    def wait_until(self, time: float) -> None:
        clock = self.lab.clock
        clock.sleep(max(0.0, time - clock.now()))

    def recover(self, spec: RecoverSpec, *, until: float, stop_when_idle: bool) -> RecoveryResult:
        """Run the engine now, on the lab's one inventory, until `until` (or idle)."""
        lab = self.lab
        self.progress(f"[{lab.clock.now():8.1f}s] recovery engine starts")
        engine = RecoveryEngine(self.topology, lab.drivers, lab.clock, self.inventory,
                                spec.config(stop_when_idle=stop_when_idle),
                                events=self.on_event)
        engine.seed_inventory()
        lab.drivers.compute.set_boot_hook(engine.boot_check)
        if spec.mode is Mode.MAINTENANCE and spec.host is not None:
            result = engine.drain(spec.host, until=until)
        else:
            result = engine.run(until=until)
        self.recoveries.append(result)
        return result

    def _action(self, step: Step) -> tuple[Action, str]:
        """What a fault, heal or command step does, and its label in the trace."""
        index = self._steps
        self._steps += 1
        if step.inject is not None:
            if step.id is not None:
                self._faults[step.id] = step.inject
            return self._inject(step.inject, step.id), \
                f"schedule[{index}] inject {describe(step.inject)}"
        if step.heal is not None:
            fault = self._faults.get(step.heal)
            if fault is None:
                raise LabStateError(f"heal {step.heal!r}: no fault was injected with that id")
            return self._heal(fault, step.heal), f"schedule[{index}] heal {describe(fault)}"
        if step.observe is not None:
            return self._observe(step.observe), f"schedule[{index}] observe {step.observe}"
        command = step.run
        assert command is not None, "a recover step is not an action"
        label = command_label(index, command)
        return (lambda: self.lab.execute(command, label)), \
            f"schedule[{index}] run {command.tool} {command.op}"

    def _observe(self, label: str) -> Action:
        def observe() -> None:
            self.checkpoints[label] = self.lab.observe()

        return observe

    def _inject(self, fault: Fault, fault_id: str | None) -> Action:
        def inject() -> None:
            self.lab.inject(fault)
            if fault_id is not None:
                self._open[fault_id] = len(self.fault_log)
            self.fault_log.append((self.lab.clock.now(), fault, None))

        return inject

    def _heal(self, fault: Fault, fault_id: str) -> Action:
        def heal() -> None:
            self.lab.heal(fault)
            entry = self._open.pop(fault_id, None)
            if entry is not None:
                at, logged, _ = self.fault_log[entry]
                self.fault_log[entry] = (at, logged, self.lab.clock.now())

        return heal
