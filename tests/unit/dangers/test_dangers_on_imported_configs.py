"""Issue 18's promise end to end: each dangerous setting, written in an operator's real
configuration files (fixtures/dangers/), is flagged on the imported topology with the
drill that shows it, and that drill, run on the simulator against the imported topology,
fails; the stories the dangers were made from carry none of these dangers."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill.dangers import DangerCode, find_dangers
from stackdrill.drill.judge import judge
from stackdrill.drill.runner import execute
from stackdrill.importer import import_config

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"

# fixture directory -> the danger it holds, the check its drill fails, the damage named
EXPECTED = {
    "dual-primary-without-allow": (DangerCode.DRBD_DUAL_PRIMARY_NOT_ALLOWED, "commands",
                                   "Multiple primaries not allowed by config"),
    "two-primaries-protocol-a": (DangerCode.DRBD_DUAL_PRIMARY_NOT_PROTOCOL_C, "drbd[r0]",
                                 "StandAlone"),
    "fencing-dont-care-dual-primary": (DangerCode.DRBD_DUAL_PRIMARY_FENCING_DONT_CARE,
                                       "drbd[r0]", "split brain"),
    "after-sb-1pri-discard-secondary": (DangerCode.DRBD_AFTER_SB_1PRI_DISCARD_SECONDARY,
                                        "drbd[r0]", "expected StandAlone"),
    "two-node-cluster-without-two-node": (DangerCode.COROSYNC_TWO_NODES_WITHOUT_TWO_NODE,
                                          "quorum", "quorate=False"),
    "local-locking-on-shared-drbd": (DangerCode.LVM_LOCAL_LOCKING_ON_SHARED_VG,
                                     "lvm_consistent", "share PE"),
    "overlay-mtu-over-underlay": (DangerCode.OVERLAY_MTU_OVER_UNDERLAY, "overlay",
                                  "path-MTU blackhole"),
}


def test_every_danger_fixture_is_covered() -> None:
    present = {p.name for p in (FIXTURES / "dangers").iterdir() if p.is_dir()}
    assert present == set(EXPECTED)
    assert {code for code, _check, _damage in EXPECTED.values()} == set(DangerCode)


@pytest.mark.parametrize("story", ["overlay", "two-node-clvm", "nova-drbd"])
def test_the_stories_hold_none_of_the_dangers(story: str) -> None:
    assert find_dangers(import_config(FIXTURES / story).topology) == []


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
def test_the_imported_danger_is_flagged_and_its_drill_fails(fixture: str) -> None:
    code, check, damage = EXPECTED[fixture]
    topology = import_config(FIXTURES / "dangers" / fixture).topology
    [danger] = [d for d in find_dangers(topology) if d.code is code]
    report = judge(execute(danger.drill(topology)))
    assert not report.passed
    failed = {c.name: c.detail for c in report.failed_checks}
    hits = [name for name, detail in failed.items()
            if name.startswith(check) and damage in detail]
    assert hits, failed
