"""`run --keep` keeps the lab however the run ends: after a failed scheduled action the
lab is the thing to look at, so it is kept (and its process lets go of it), not torn
down; without --keep it is destroyed on that path too."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.backends import lifetime
from stackdrill.backends.sim.lab import SimLab
from stackdrill.drill import load_drill
from stackdrill.drill.runner import execute
from stackdrill.errors import InfrastructureError
from stackdrill.faults import Fault

DRILL = Path(__file__).resolve().parents[3] / "lab" / "drills" / "quorum-two-node.yaml"


class Ending:
    """What happened to the lab at the end of the run."""

    kept = 0
    destroyed = 0


class DeadBmcLab(SimLab):
    """The simulator whose power controller refuses every fault, counting how it ends."""

    def inject(self, fault: Fault) -> None:
        raise ConnectionRefusedError(f"BMC of {fault.targets()[0]}: connection refused")

    def keep(self) -> None:
        Ending.kept += 1

    def destroy(self) -> None:
        Ending.destroyed += 1
        super().destroy()


@pytest.fixture(autouse=True)
def dead_bmc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("stackdrill.backends.sim.SimBackend.create",
                        lambda self, topology, **kw: DeadBmcLab(topology, **kw))
    Ending.kept = Ending.destroyed = 0


@pytest.mark.parametrize(("keep", "kept", "destroyed"), [(True, 1, 0), (False, 0, 1)])
def test_a_lab_kept_on_purpose_stays_after_an_error(keep: bool, kept: int,
                                                   destroyed: int) -> None:
    with pytest.raises(InfrastructureError, match="scheduled action"):
        execute(load_drill(DRILL), keep=keep)
    assert (Ending.kept, Ending.destroyed) == (kept, destroyed)
    assert not lifetime._live  # nothing left for the exit handler to tear down
