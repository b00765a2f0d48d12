"""The one player drills and named labs share: a drill's faults happen while its
recovery runs, a heal finds its inject by id, a named lab's recover returns once the
failure is handled, and every recovery is configured from its recover step alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stackdrill.api import FaultHealed, Lab
from stackdrill.backends.sim import SimBackend
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.drill.player import Player
from stackdrill.errors import LabStateError
from stackdrill.faults import describe
from stackdrill.faults.catalogue import HostCrash, LinkDown
from stackdrill.recovery import InstanceState, Profile, RecoveryConfig
from stackdrill.topology import Topology, load_topology

TOPOLOGY = Path(__file__).resolve().parents[3] / "lab" / "topologies" / "nova-drbd.yaml"
CRASH = HostCrash(host="cmp1", power_back=False)
VICTIMS = {"app1", "db1", "web1"}


@pytest.fixture(scope="module")
def topology() -> Topology:
    return load_topology(TOPOLOGY)


@pytest.fixture
def lab(topology: Topology) -> Iterator[Lab]:
    with SimBackend().create(topology, lab_name="player-test", seed=1) as lab:
        yield lab


def recovered(player: Player) -> set[str]:
    return {o.name for r in player.recoveries for o in r.instances
            if o.state is InstanceState.RECOVERED}


def test_a_fault_scheduled_after_the_recovery_starts_happens_while_it_runs(
        lab: Lab, topology: Topology, tmp_path: Path) -> None:
    player = Player(lab, topology, tmp_path)
    player.play([Step(at=0, recover=RecoverSpec()), Step(at=40, id="c", inject=CRASH)],
                end=300)
    assert player.fault_log == [(40.0, CRASH, None)]
    assert recovered(player) == VICTIMS
    assert lab.clock.now() == 300


def test_a_heal_finds_its_inject_by_id(lab: Lab, topology: Topology, tmp_path: Path) -> None:
    first, second = LinkDown(host="cmp2", network="storage"), LinkDown(host="cmp3",
                                                                      network="storage")
    player = Player(lab, topology, tmp_path)
    player.play([Step(at=10, id="a", inject=first), Step(at=20, id="b", inject=second),
                 Step(at=30, heal="b"), Step(at=40, heal="a")], end=50)
    assert player.fault_log == [(10.0, first, 40.0), (20.0, second, 30.0)]


def test_a_heal_of_an_unknown_id_is_refused(lab: Lab, topology: Topology,
                                            tmp_path: Path) -> None:
    with pytest.raises(LabStateError, match="'nope'"):
        Player(lab, topology, tmp_path).apply(Step(at=0, heal="nope"))


def test_a_named_labs_recover_returns_once_the_failure_is_handled(
        lab: Lab, topology: Topology, tmp_path: Path) -> None:
    player = Player(lab, topology, tmp_path)
    assert player.apply(Step(at=0, id="f1", inject=CRASH)) is None
    result = player.apply(Step(at=60, recover=RecoverSpec()))
    assert result is not None and result.ok
    assert recovered(player) == VICTIMS
    assert 60 < lab.clock.now() < 60 + RecoverSpec().budget_s


def test_a_player_that_reattached_heals_what_another_process_injected(
        lab: Lab, topology: Topology, tmp_path: Path) -> None:
    fault = LinkDown(host="cmp2", network="storage")
    lab.inject(fault)  # as an earlier `stackdrill inject` did
    player = Player(lab, topology, tmp_path)
    player.recall([Step(at=0, id="f1", inject=fault)])
    player.apply(Step(at=0, heal="f1"))
    healed = [t.event for t in lab.events() if isinstance(t.event, FaultHealed)]
    assert [e.description for e in healed] == [describe(fault)]


def test_one_recovery_config_from_a_recover_step() -> None:
    """The defaults live in RecoveryConfig: a step that says nothing gets the engine's,
    and a Masakari step gets Masakari's parallelism and grace."""
    assert RecoverSpec().config(stop_when_idle=False) == RecoveryConfig(stop_when_idle=False)
    masakari = RecoverSpec(profile=Profile.MASAKARI).config(stop_when_idle=True)
    assert masakari == RecoveryConfig.masakari(stop_when_idle=True)
    assert (masakari.parallel, masakari.per_failed_host, masakari.grace_s) == (None, 3, 60.0)
    assert RecoverSpec(profile=Profile.MASAKARI, parallel=8).config(
        stop_when_idle=True).parallel == 8
