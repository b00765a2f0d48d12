"""What the lab commands do to a live lab, as typed values: carry a step out, look at the
lab, judge its hosts as the engine would. The one place for it whether the lab lives in
the command's own process (the simulator, replayed) or in a lab keeper (a real lab kept
between commands, `stackdrill.cli.keeper`), so both answer alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from stackdrill.api import CommandResult, Lab, Observation, PowerState
from stackdrill.checks import Evidence
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.drill.player import Player
from stackdrill.recovery import RecoveryConfig, RecoveryEngine, RecoveryEvent, RecoveryResult, dburl
from stackdrill.recovery.dburl import InventoryTarget, run_namespace
from stackdrill.recovery.detect import Assessment, Verdict, assess
from stackdrill.recovery.engine import storage_servers
from stackdrill.recovery.plan import Plan
from stackdrill.topology import Topology
from stackdrill.topology.model import Role

Progress = Callable[[RecoveryEvent], None]


@dataclass(frozen=True)
class DryRun:
    """What `recover --dry-run` shows: the engine's verdict on every compute host, the
    power controller's word on those it judges down, and its plan for them."""

    now: float
    parallel: int | None  # the global cap, if any
    parallelism: str  # what bounds the flows in flight, in words
    assume_fenced: bool
    verdicts: tuple[Assessment, ...]
    power: dict[str, PowerState]  # host judged down -> what the power controller reports
    plan: Plan | None  # None: no host is down

    @property
    def failed(self) -> list[str]:
        return [a.host for a in self.verdicts if a.verdict is Verdict.DOWN]


class LabCore:
    """A live lab with its player and its engine's inventory (kept in `workdir`)."""

    def __init__(self, lab: Lab, topology: Topology, workdir: Path, *,
                 inventory: InventoryTarget | None = None,
                 inventory_url: str | None = None) -> None:
        """`inventory_url`: the lab's own inventory (default: a file in `workdir`);
        `inventory`: where scratch inventories (a dry run's plan) are made."""
        self.lab = lab
        self.topology = topology
        self.workdir = workdir
        self.inventory = inventory or dburl.inventory_url()
        self._progress: Progress | None = None
        self.player = Player(lab, topology, workdir, on_event=self._relay,
                             inventory=inventory_url)

    def _relay(self, event: RecoveryEvent) -> None:
        if self._progress is not None:
            self._progress(event)

    def now(self) -> float:
        return self.lab.clock.now()

    def apply(self, step: Step, progress: Progress | None = None) -> RecoveryResult | None:
        """Carry the step out now; a recovery's events go to `progress` as they happen."""
        self._progress = progress
        try:
            return self.player.apply(step)
        finally:
            self._progress = None

    def observe(self) -> Observation:
        return self.lab.observe()

    def last_command(self) -> tuple[str, CommandResult] | None:
        """The label and result of the operator command `apply` ran last (None: none, or
        it did not end within the player's bound)."""
        label = self.player.last_command
        result = None if label is None else self.lab.command_results().get(label)
        return None if label is None or result is None else (label, result)

    def evidence(self) -> Evidence:
        return Evidence.collect_live(self.lab)  # a kept lab's workloads write on

    def _assess(self, config: RecoveryConfig) -> tuple[Assessment, ...]:
        """The engine's verdict on every compute host right now (monitoring began at 0 s)."""
        now = self.now()
        compute = self.lab.drivers.compute
        return tuple(
            assess(compute.health(h.name), partial(compute.witnesses, h.name), now,
                   config.grace_s, 0.0, config.fence_on_isolation, config.heartbeat_interval_s)
            for h in sorted(self.topology.hosts_with(Role.COMPUTE), key=lambda h: h.name))

    def idle(self, spec: RecoverSpec) -> bool:
        """Every host the engine watches (compute hosts, and storage hosts that serve
        volumes) is on and heartbeating, and every instance runs somewhere.

        Without this, `recover` on a healthy lab would watch it for its whole budget
        waiting for a failure (the engine, as a monitor, waits for one). A lost storage
        server counts: its guests still "run", frozen on their volumes."""
        config = spec.config(stop_when_idle=True)
        now = self.now()
        compute = sorted(h.name for h in self.topology.hosts_with(Role.COMPUTE))
        for host in (*compute, *storage_servers(self.topology, compute)):
            health = self.lab.drivers.compute.health(host)
            if health.power is not PowerState.ON or health.last_heartbeat is None \
                    or now - health.last_heartbeat > config.heartbeat_interval_s * 2:
                return False
        running = self.observe().running
        return all(running.get(i.name) for i in self.topology.instances)

    def dry_run(self, spec: RecoverSpec) -> DryRun:
        """Judge the hosts with the engine's own detector and settings (so `--profile
        masakari` judges with Masakari's grace) and plan for those it finds down, acting
        on nothing: the plan's inventory is a scratch one beside the lab's."""
        config = spec.config(stop_when_idle=True)
        verdicts = self._assess(config)
        now = self.now()
        down = [a.host for a in verdicts if a.verdict is Verdict.DOWN]
        plan = None
        if down:
            with run_namespace(self.inventory, self.workdir, "plan") as url:
                engine = RecoveryEngine(self.topology, self.lab.drivers, self.lab.clock, url,
                                        config)
                engine.seed_inventory()
                plan = engine.plan(down)
        power = {host: self.lab.drivers.power.state(host) for host in down}
        return DryRun(now=now, parallel=config.parallel,
                      parallelism=config.describe_parallelism(),
                      assume_fenced=config.assume_fenced,
                      verdicts=verdicts, power=power, plan=plan)
