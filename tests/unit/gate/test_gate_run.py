"""The gate run through the project's one path on the simulator: all applicable drills
of a sound topology pass; a setting known to break a drill makes exactly that drill
FAIL; a lab that cannot be brought up is ERROR (never FAIL); a drill run to show a
danger fails the gate when the damage shows."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from stackdrill.api import Lab, LabOptions
from stackdrill.backends import REGISTRY
from stackdrill.backends.sim import SimBackend
from stackdrill.drill.load import load_drill
from stackdrill.errors import LabNotReadyError, UnsupportedError
from stackdrill.gate import Expect, GateDrill, GateVerdict, run_gate
from stackdrill.gate.builders import STANDARD
from stackdrill.gate.report import GateReport
from stackdrill.shipped import topology_path
from stackdrill.topology import Topology, parse_topology


def topology(name: str, **changes: Any) -> Topology:
    """A shipped topology, with `section.item.field` changes as a drill's overrides."""
    path = topology_path(name)
    assert path is not None
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        section, item, field = key.split(".")
        next(x for x in data[section] if x["name"] == item)[field] = value
    return parse_topology(copy.deepcopy(data), name)


def verdicts(report: GateReport) -> dict[str, GateVerdict]:
    return {r.name: r.verdict for r in report.results}


class NeverReadyBackend(SimBackend):
    """The simulator, except that no lab ever comes up (a guest that never boots)."""

    name = "never-ready"

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        raise LabNotReadyError("guest cmp1: agent silent after 120 s")


class ElsewhereBackend(SimBackend):
    """The simulator, declared unable to run on this machine."""

    name = "elsewhere"

    @classmethod
    def available(cls) -> str | None:
        return "needs a hypervisor this machine does not have"


@pytest.fixture
def broken_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "never-ready", f"{__name__}:NeverReadyBackend")
    monkeypatch.setitem(REGISTRY, "elsewhere", f"{__name__}:ElsewhereBackend")


def test_a_sound_topology_passes_every_drill_with_its_report() -> None:
    gate = run_gate(topology("drbd-pair"), backend="sim", seed=1)
    assert verdicts(gate) == {s.name: GateVerdict.PASS for s in STANDARD}
    assert gate.verdict is GateVerdict.PASS and gate.exit_code == 0
    for result in gate.results:
        assert result.report is not None and result.report.passed
        assert result.report.drill == result.name and result.report.seed == 1
    assert gate.results[0].rto_s is not None and gate.results[0].rto_s > 0
    assert len(gate.topology_sha256) == 64 and gate.backend == "sim"


def test_two_node_false_fails_host_loss_on_the_clvm_pair() -> None:
    """Without two_node the survivor of a two-node cluster has no quorum: clustered LVM
    stops and the lost host's instance never runs again (quorum-no-two-node)."""
    ok = run_gate(topology("two-node-clvm", **{"drbd.r0.fencing": "resource-and-stonith",
                                               "clusters.drbd-pair.fencing": "power"}),
                  only={"host-loss"})
    assert verdicts(ok) == {"host-loss": GateVerdict.PASS}
    broken = run_gate(topology("two-node-clvm", **{"clusters.drbd-pair.two_node": False,
                                                   "clusters.drbd-pair.expected_votes": 2}),
                      only={"host-loss"})
    assert verdicts(broken) == {"host-loss": GateVerdict.FAIL}
    assert broken.exit_code == 1
    assert any(f.startswith("exactly_once: not running anywhere: vm1")
               for f in broken.results[0].failed)


def test_dual_primary_without_stonith_fails_split_brain_and_discard_secondary_loses_data(
) -> None:
    """The shipped two-node-clvm (fencing dont-care, after-sb-1pri discard-secondary):
    the split brain happens and DRBD throws away the acknowledged writes bob made; with
    resource-and-stonith fencing the same drill passes."""
    shipped = run_gate(topology("two-node-clvm"))
    assert verdicts(shipped)["split-brain"] is GateVerdict.FAIL
    assert shipped.verdict is GateVerdict.FAIL and shipped.reason == "failed: split-brain"
    failed = shipped.results[[r.name for r in shipped.results].index("split-brain")].failed
    assert any(f.startswith("acked_writes: vm2: ") and "acked writes lost" in f
               for f in failed), failed
    assert any("split brain detected" in f for f in failed), failed
    others = {n: v for n, v in verdicts(shipped).items() if n != "split-brain"}
    assert set(others.values()) == {GateVerdict.PASS}
    stonith = run_gate(topology("two-node-clvm", **{"drbd.r0.fencing": "resource-and-stonith",
                                                    "clusters.drbd-pair.fencing": "power"}),
                       only={"split-brain"})
    assert verdicts(stonith) == {"split-brain": GateVerdict.PASS}


def test_a_topology_without_drbd_says_not_applicable_and_never_pass() -> None:
    gate = run_gate(topology("nova-nbd"), only={"split-brain", "disk-failure"})
    assert verdicts(gate) == {"disk-failure": GateVerdict.NOT_APPLICABLE,
                              "split-brain": GateVerdict.NOT_APPLICABLE}
    assert gate.verdict is GateVerdict.FAIL and gate.exit_code == 1
    assert gate.reason == "no drill applies to this topology: the gate proved nothing"
    assert all(r.report is None for r in gate.results)


def test_a_lab_that_never_comes_up_is_an_error_not_a_failure(broken_backends: None) -> None:
    gate = run_gate(topology("drbd-pair"), backend="never-ready", only={"host-loss",
                                                                          "disk-failure"})
    assert verdicts(gate) == {"host-loss": GateVerdict.ERROR,
                              "disk-failure": GateVerdict.ERROR}
    assert gate.verdict is GateVerdict.ERROR and gate.exit_code == 3
    for result in gate.results:
        assert result.reason == "lab not ready: guest cmp1: agent silent after 120 s"
        assert result.report is not None and result.report.errored
        assert result.report.checks == ()


def test_an_unavailable_backend_is_an_error_for_every_drill(broken_backends: None) -> None:
    gate = run_gate(topology("nova-nbd"), backend="elsewhere")
    assert gate.exit_code == 3
    assert {r.verdict for r in gate.results if r.name not in (
        "storage-primary-loss", "disk-failure", "split-brain")} == {GateVerdict.ERROR}
    assert gate.results[0].reason == ("backend 'elsewhere' cannot run here: needs a "
                                      "hypervisor this machine does not have")


def test_a_backend_that_cannot_realise_a_drill_is_refused_before_anything_runs() -> None:
    with pytest.raises(UnsupportedError, match="backend netns cannot realise") as caught:
        run_gate(topology("nova-drbd"), backend="netns")
    assert caught.value.exit_code == 2


def test_a_danger_drill_fails_the_gate_when_its_damage_shows() -> None:
    """quorum-no-two-node demonstrates the survivor's lost quorum: run as DAMAGE on the
    same topology it makes the gate FAIL; on a topology where two_node is set its damage
    does not show, and the gate says so without failing."""
    demo = load_drill("quorum-no-two-node")
    shows = GateDrill(demo, "Two-node cluster without two_node", victim="bob",
                      expects=Expect.DAMAGE)
    gate = run_gate(demo.topology, extra=(shows,), only={"quorum-no-two-node"})
    (result,) = gate.results
    assert result.verdict is GateVerdict.FAIL and result.expects is Expect.DAMAGE
    assert result.reason.startswith("the damage showed: quorum[drbd-pair]: ")
    safe = GateDrill(demo.model_copy(update={"topology": topology("two-node-clvm")}),
                     "Two-node cluster without two_node", expects=Expect.DAMAGE)
    (result,) = run_gate(topology("two-node-clvm"), extra=(safe,),
                         only={"quorum-no-two-node"}).results
    assert result.verdict is GateVerdict.PASS
    assert result.reason.startswith("the predicted damage did not show: quorum[drbd-pair]")


def test_the_report_round_trips_as_json() -> None:
    gate = run_gate(topology("drbd-pair"), only={"mgmt-partition"}, seed=3)
    again = GateReport.from_json(gate.to_json())
    assert again == gate and again.seed == 3 and again.results[0].report is not None


def test_an_unknown_name_or_an_extra_drill_named_as_a_standard_one_is_refused() -> None:
    topo = topology("drbd-pair")
    with pytest.raises(ValueError, match=r"no such gate drill: nope \(known: host-loss, "):
        run_gate(topo, only={"nope"})
    clash = GateDrill(load_drill("vm-host-failure").model_copy(
        update={"spec": load_drill("vm-host-failure").spec.model_copy(
            update={"name": "host-loss"})}), "Another host loss")
    with pytest.raises(ValueError, match="two gate drills share a name: host-loss"):
        run_gate(topo, extra=(clash,))
