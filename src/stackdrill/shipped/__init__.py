"""The drills and topologies shipped inside the package, so a `pip install stackdrill`
user has them without a checkout; `stackdrill run nova-host-failure` finds one by name.

The files live here once (a checkout's `lab/drills` and `lab/topologies` are symbolic
links to these directories), so an editable install, a built wheel and the paths
`lab/drills/X.yaml` in tests and docs all read the same file. A drill names its topology
as `../topologies/NAME.yaml`, which resolves inside the package too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DRILLS = HERE / "drills"
TOPOLOGIES = HERE / "topologies"
SUFFIX = ".yaml"


@dataclass(frozen=True)
class ShippedFile:
    """A drill or topology shipped with stackdrill: its name and where it is."""

    name: str
    path: Path


def _listed(folder: Path) -> list[ShippedFile]:
    return [ShippedFile(p.stem, p) for p in sorted(folder.glob(f"*{SUFFIX}"))]


def drills() -> list[ShippedFile]:
    """Every shipped drill, by name."""
    return _listed(DRILLS)


def topologies() -> list[ShippedFile]:
    """Every shipped topology, by name."""
    return _listed(TOPOLOGIES)


def _named(folder: Path, name: str) -> Path | None:
    if not name or "/" in name or name.startswith("."):
        return None  # a name, never a path into or out of the folder
    path = folder / (name if name.endswith(SUFFIX) else name + SUFFIX)
    return path if path.is_file() else None


def drill_path(name: str) -> Path | None:
    """The shipped drill called `name` (with or without .yaml); None when there is none."""
    return _named(DRILLS, name)


def topology_path(name: str) -> Path | None:
    """The shipped topology called `name` (with or without .yaml); None when there is none."""
    return _named(TOPOLOGIES, name)
