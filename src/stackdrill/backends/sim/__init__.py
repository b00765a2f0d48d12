"""The embedded default backend: a deterministic discrete-event simulation of the whole lab."""

from __future__ import annotations

from typing import ClassVar

from stackdrill.api import FEATURES, Backend, Capabilities, Lab, LabOptions
from stackdrill.backends.sim.faults import FAULT_KINDS
from stackdrill.topology import Topology


class SimBackend(Backend):
    """Runs anywhere, needs nothing: same topology, drill and seed give the same trace."""

    name = "sim"
    capabilities: ClassVar[Capabilities] = Capabilities(
        faults=FAULT_KINDS,
        features=frozenset(FEATURES) - {"throughput-under-loss"},
        needs="nothing (pure Python)",
        in_process=True,
    )

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        from stackdrill.backends.sim.lab import SimLab

        return SimLab(topology, lab_name=lab_name, seed=seed, options=options or LabOptions())


__all__ = ["SimBackend"]
