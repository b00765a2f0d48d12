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
