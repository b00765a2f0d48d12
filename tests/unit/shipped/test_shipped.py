"""The shipped drills and topologies: one copy of each file, found by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdrill import shipped
from stackdrill.drill import load_drill

ROOT = Path(__file__).resolve().parents[3]


def test_the_checkouts_lab_folders_are_the_shipped_ones() -> None:
    """lab/drills/X.yaml in tests and docs reads the very file the wheel ships."""
    assert (ROOT / "lab" / "drills").resolve() == shipped.DRILLS
    assert (ROOT / "lab" / "topologies").resolve() == shipped.TOPOLOGIES


def test_every_shipped_drill_loads_with_its_topology_from_inside_the_package() -> None:
    names = [d.name for d in shipped.drills()]
    assert "nova-host-failure" in names and len(names) >= 50
    for found in shipped.drills():
        drill = load_drill(found.path)
        assert Path(drill.source).parent == shipped.DRILLS


@pytest.mark.parametrize("name", ["nova-host-failure", "nova-host-failure.yaml"])
def test_a_drill_is_found_by_its_name_with_or_without_the_suffix(name: str) -> None:
    assert shipped.drill_path(name) == shipped.DRILLS / "nova-host-failure.yaml"


@pytest.mark.parametrize("name", ["", "nope", "../topologies/nova-drbd",
                                  "../../cli/__init__", ".hidden"])
def test_a_name_never_reaches_outside_the_drills(name: str) -> None:
    assert shipped.drill_path(name) is None


def test_topologies_are_found_by_name() -> None:
    assert shipped.topology_path("nova-drbd") == shipped.TOPOLOGIES / "nova-drbd.yaml"
    assert "generate_large" not in [t.name for t in shipped.topologies()]
