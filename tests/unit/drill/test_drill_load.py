"""Loading drills: shipped drills are valid; wrong references are named with their path."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.drill import load_drill
from stackdrill.errors import DrillError

ROOT = Path(__file__).resolve().parents[3]
DRILLS = sorted((ROOT / "lab" / "drills").glob("*.yaml"))


@pytest.mark.parametrize("path", DRILLS, ids=lambda p: p.stem)
def test_shipped_drills_are_valid(path: Path) -> None:
    drill = load_drill(path)
    assert drill.spec.expect, "a drill without expectations proves nothing"


def test_bad_references_are_named() -> None:
    path = ROOT / "fixtures" / "bad" / "bad-drill.yaml"
    with pytest.raises(DrillError) as info:
        load_drill(path)
    text = info.value.render()
    assert f"{path}: schedule[2].inject.kind:" in text  # meteor_strike is no fault
    assert "input_value" not in text


def test_reference_errors_after_types_are_valid(tmp_path: Path) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text(
        f"name: d\ntopology: {ROOT / 'lab/topologies/nova-drbd.yaml'}\n"
        "schedule:\n  - {at: 10, inject: {kind: host_crash, host: cmp9}}\n"
        "  - {at: 20, heal: nothing}\n"
        "expect:\n  - {check: drbd, resource: r7}\n")
    with pytest.raises(DrillError) as info:
        load_drill(drill)
    assert info.value.render().splitlines() == [
        f"{drill}: schedule[0].inject.host: unknown host 'cmp9'",
        f"{drill}: schedule[1].heal: no earlier step with id 'nothing'",
        f"{drill}: expect[0].resource: unknown resource 'r7'",
    ]


def test_topology_overrides_change_one_field(tmp_path: Path) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text(
        f"name: d\ntopology: {ROOT / 'lab/topologies/mirrored-compute.yaml'}\n"
        "topology_overrides: {drbd.r0.protocol: B, volume_groups.vg-local.locking: none}\n"
        "expect: [{check: exactly_once}]\n")
    loaded = load_drill(drill)
    assert loaded.topology.drbd[0].protocol == "B"
    assert loaded.topology.volume_groups[0].locking == "none"


def test_override_of_missing_item_is_refused(tmp_path: Path) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text(
        f"name: d\ntopology: {ROOT / 'lab/topologies/two-node-clvm.yaml'}\n"
        "topology_overrides: {drbd.r9.protocol: B}\nexpect: [{check: exactly_once}]\n")
    with pytest.raises(DrillError,
                       match=r"topology_overrides.drbd.r9.protocol: no item named 'r9'"):
        load_drill(drill)


def test_step_needs_exactly_one_action(tmp_path: Path) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text(
        f"name: d\ntopology: {ROOT / 'lab/topologies/nova-drbd.yaml'}\n"
        "schedule: [{at: 1}]\nexpect: [{check: exactly_once}]\n")
    with pytest.raises(DrillError, match=r"schedule\[0\]: .*exactly one of inject, heal"):
        load_drill(drill)


def test_every_reference_is_checked_in_drill_order(tmp_path: Path) -> None:
    """Each kind of step, expectation and the workload names what it refers to wrongly,
    in the order a reader meets them in the file."""
    drill = tmp_path / "d.yaml"
    drill.write_text(
        f"name: d\ntopology: {ROOT / 'lab/topologies/nova-drbd.yaml'}\nduration_s: 100\n"
        "workload: {instances: [web1, web9]}\n"
        "schedule:\n"
        "  - {at: 1, id: a, inject: {kind: link_down, host: cmp1, network: wan}}\n"
        "  - {at: 120, id: a, inject: {kind: disk_failure, host: sto1, disk: sdz}}\n"
        "  - {at: 3, inject: {kind: partition, groups: [[cmp1], [cmp2, cmp7]]}}\n"
        "  - {at: 4, inject: {kind: tunnel_endpoint_down, host: cmp9, overlay: nope}}\n"
        "  - {at: 150, heal: b}\n"
        "  - {at: 6, run: {tool: lvm, host: sto3, op: refresh, vg: vg9}}\n"
        "  - {at: 7, run: {tool: probe, src: web1, dst: web7, label: seen}}\n"
        "  - {at: 8, run: {tool: drbdadm, host: sto1, op: primary, resource: r5}}\n"
        "  - {at: 9, run: {tool: cluster, op: fence_ack_manual, cluster: c9, victim: sto9}}\n"
        "  - {at: 10, recover: {mode: maintenance, host: cmp8, reserved_hosts: [cmp2, x]}}\n"
        "  - {at: 11, heal: a}\n"
        "expect:\n"
        "  - {check: lvm_consistent, vg: vg1}\n"
        "  - {check: quorum, cluster: c1, quorate: {}}\n"
        "  - {check: returning_host_clean, host: h1}\n"
        "  - {check: overlay, probes: [seen, unseen]}\n"
        "  - {check: recovered, instances: [web2, ghost]}\n"
        "  - {check: unrecoverable, instances: [spook]}\n")
    with pytest.raises(DrillError) as info:
        load_drill(drill)
    found = [line.removeprefix(f"{drill}: ") for line in info.value.render().splitlines()]
    assert found == [
        "schedule[0].inject.network: unknown network 'wan'",
        "schedule[1].id: duplicate id 'a'",
        "schedule[1].at: 120.0 s is not before the drill ends (100.0 s): it would never happen",
        "schedule[1].inject.disk: host 'sto1' has no disk 'sdz'",
        "schedule[2].inject.groups[1][1]: unknown host 'cmp7'",
        "schedule[3].inject.host: unknown host 'cmp9'",
        "schedule[3].inject.overlay: unknown overlay 'nope'",
        "schedule[4].at: 150.0 s is not before the drill ends (100.0 s): it would never happen",
        "schedule[4].heal: no earlier step with id 'b'",
        "schedule[5].run.host: unknown host 'sto3'",
        "schedule[5].run.vg: unknown vg 'vg9'",
        "schedule[6].run.dst: unknown dst 'web7'",
        "schedule[7].run.resource: unknown resource 'r5'",
        "schedule[8].run.cluster: unknown cluster 'c9'",
        "schedule[8].run.victim: unknown victim 'sto9'",
        "schedule[9].recover.reserved_hosts[1]: unknown host 'x'",
        "schedule[9].recover.host: unknown host 'cmp8'",
        "expect[0].vg: unknown vg 'vg1'",
        "expect[1].cluster: unknown cluster 'c1'",
        "expect[2].host: unknown host 'h1'",
        "expect[3].probes[1]: no probe step labelled 'unseen'",
        "expect[4].instances[1]: unknown instance 'ghost'",
        "expect[5].instances[0]: unknown instance 'spook'",
        "workload.instances[1]: unknown instance 'web9'",
    ]


def test_a_topology_file_changed_between_loads_is_read_again(tmp_path: Path) -> None:
    """Topology files are read once per version (a sweep loads one for every drill): an
    edit between two loads in one process is seen, and a drill with overrides changes
    nothing for the next drill of the same file."""
    topo = tmp_path / "t.yaml"
    topo.write_text((ROOT / "lab/topologies/mirrored-compute.yaml").read_text())
    plain, changed = tmp_path / "plain.yaml", tmp_path / "changed.yaml"
    plain.write_text(f"name: d\ntopology: {topo}\nexpect: [{{check: exactly_once}}]\n")
    changed.write_text(f"name: d\ntopology: {topo}\n"
                       "topology_overrides: {drbd.r0.protocol: B}\n"
                       "expect: [{check: exactly_once}]\n")
    assert load_drill(changed).topology.drbd[0].protocol == "B"
    assert load_drill(plain).topology.drbd[0].protocol == "C"
    topo.write_text(topo.read_text().replace("protocol: C", "protocol: A") + "\n")
    assert load_drill(plain).topology.drbd[0].protocol == "A"
