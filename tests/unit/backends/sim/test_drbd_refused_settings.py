"""Settings DRBD 8.4 refuses at bring-up, simulated as DRBD answers them: the resource
still comes up, without what was refused.

- allow-two-primaries with protocol A or B: drbd_nl.c _check_net_options returns
  ERR_NOT_PROTO_C ("Protocol C required"), so `drbdadm up` attaches but never connects;
  a later `drbdadm connect`, or the `up` of a rebooted node, is refused the same way.
- two primaries without allow-two-primaries: the second `drbdadm primary` is refused
  (drbd_state.c is_valid_state, SS_TWO_PRIMARIES)."""

from __future__ import annotations

from typing import Any

from stackdrill.api.commands import DrbdCommand
from stackdrill.checks.expectations import ExpectCommands, ExpectDrbd
from stackdrill.drill.judge import judge
from stackdrill.drill.model import Drill, DrillSpec, Step
from stackdrill.drill.runner import execute
from stackdrill.faults import HostReboot
from stackdrill.topology import Topology, parse_topology

PAIR: dict[str, Any] = {
    "name": "pair",
    "hosts": [{"name": h, "roles": ["compute", "storage"],
               "disks": [{"name": "sdb", "size_gb": 20}]} for h in ("a", "b")],
    "networks": [{"name": "repl", "purposes": ["replication", "management"],
                  "cidr": "10.9.0.0/24", "addresses": {"a": "10.9.0.1", "b": "10.9.0.2"}}],
    "drbd": [{"name": "r0", "nodes": ["a", "b"], "disk": "sdb", "size_gb": 10,
              "network": "repl"}],
}


def pair(**res: Any) -> Topology:
    data = {**PAIR, "drbd": [{**PAIR["drbd"][0], **res}]}
    return parse_topology(data, "pair.yaml")


def drill(topo: Topology, *steps: Step, expect: tuple[Any, ...]) -> Drill:
    spec = DrillSpec(name="refused", topology=topo.model_dump(mode="json"), duration_s=200,
                     schedule=steps, expect=expect)
    return Drill(spec=spec, topology=topo, source="test")


def test_protocol_a_with_two_primaries_never_connects_not_even_after_a_reboot() -> None:
    topo = pair(protocol="A", allow_two_primaries=True, primary=["a", "b"])
    report = judge(execute(drill(
        topo,
        Step(at=10, run=DrbdCommand(host="a", op="connect", resource="r0")),
        Step(at=20, inject=HostReboot(host="b")),
        expect=(ExpectCommands(failed=(0,), says={0: "(139) Protocol C required"}),
                ExpectDrbd(resource="r0", nodes={
                    "a": {"role": "Primary", "connection": "StandAlone", "disk": "UpToDate"},
                    "b": {"connection": "StandAlone", "disk": "UpToDate"}})))))
    assert report.passed, [(c.name, c.detail) for c in report.failed_checks]


def test_protocol_c_with_two_primaries_connects() -> None:
    topo = pair(protocol="C", allow_two_primaries=True, primary=["a", "b"])
    report = judge(execute(drill(topo, expect=(ExpectDrbd(resource="r0", nodes={
        n: {"role": "Primary", "connection": "Connected"} for n in ("a", "b")}),))))
    assert report.passed, [(c.name, c.detail) for c in report.failed_checks]


def test_a_second_primary_without_allow_two_primaries_stays_secondary() -> None:
    topo = pair(primary=["a", "b"])
    report = judge(execute(drill(topo, expect=(ExpectDrbd(resource="r0", nodes={
        "a": {"role": "Primary", "connection": "Connected"},
        "b": {"role": "Secondary", "connection": "Connected"}}),))))
    assert report.passed, [(c.name, c.detail) for c in report.failed_checks]
    notes = [e.label for e in report.timeline if e.lane == "drbd:r0"]
    assert any("promotion-refused" in n and "node=b" in n for n in notes), notes
