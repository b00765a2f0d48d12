"""Load a drill: parse YAML once, validate, resolve its topology, check every name it uses."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stackdrill.drill.model import Drill, DrillSpec
from stackdrill.drill.references import command_problems, fault_problems, reference_problems
from stackdrill.echo import cut, key_text, shown
from stackdrill.errors import DrillError, InputError, Problem, TopologyError
from stackdrill.shipped import drill_path
from stackdrill.topology import Topology, parse_topology
from stackdrill.topology.load import not_a_topology
from stackdrill.yamlio import problems_from_validation, read_mapping

__all__ = ["apply_overrides", "command_problems", "fault_problems", "find_drill", "load_any",
           "load_drill", "parse_drill", "reference_problems"]


def find_drill(ref: str | Path, base: Path | None = None) -> Path:
    """The drill file `ref` names: a path (relative ones from `base` first, e.g. the
    directory of the test that asked, then from the current directory), else the name of
    a shipped drill (`nova-host-failure`), so a wheel user needs no checkout."""
    path = Path(ref)
    candidates = [path] if path.is_absolute() or base is None else [base / path, path]
    for candidate in candidates:
        if candidate.exists():
            return candidate
    shipped = drill_path(str(ref))
    if shipped is not None:
        return shipped
    raise DrillError(f"drill {cut(str(ref), 200)!r}", [Problem(
        "", "no such file and no shipped drill of that name (see stackdrill list drills)")])


def load_drill(path: str | Path, base: Path | None = None) -> Drill:
    """The drill at `path`, or the shipped drill of that name (see find_drill)."""
    found = find_drill(path, base)
    return parse_drill(read_mapping(found, DrillError), found)


def load_any(path: str | Path) -> Topology | Drill:
    """A topology or a drill file, read and parsed once, told apart by its keys (a
    topology has `hosts:`, a drill names its `topology:`)."""
    path = Path(path)
    data = read_mapping(path, InputError)
    if "hosts" in data and "topology" not in data:
        return parse_topology(data, str(path))
    return parse_drill(data, path)


def not_a_drill(data: dict[Any, Any]) -> str | None:
    """Why this mapping cannot be a drill at all, without echoing any of it."""
    if "hosts" in data and "topology" not in data:
        return "this is a topology, not a drill: a drill names it in `topology:`"
    if not any(key in DrillSpec.model_fields for key in data):
        return ("not a drill: none of its keys is a drill's "
                f"({', '.join(list(DrillSpec.model_fields)[:4])}, ...)")
    return None


def parse_drill(data: dict[str, Any], path: Path) -> Drill:
    """A drill from its already parsed mapping; `path` is where it was read from (its
    `topology:` is relative to it)."""
    source = str(path)
    refused = not_a_drill(data)
    if refused:
        raise DrillError(source, [Problem("", refused)])
    try:
        spec = DrillSpec.model_validate(data)
    except ValidationError as exc:
        raise DrillError(source, problems_from_validation(exc, data)) from None
    if isinstance(spec.topology, str):
        raw, topo_source = _topology_file(spec.topology, path)
        prefix = ""
    else:
        raw, topo_source, prefix = spec.topology, source, "topology"
    if spec.topology_overrides:
        raw = apply_overrides(raw, spec.topology_overrides, source)
        topo_source = f"{source} (topology with topology_overrides)"
    try:
        topology = parse_topology(raw, topo_source, prefix=prefix)
    except TopologyError as exc:
        raise (DrillError(source, exc.problems) if prefix else exc) from None
    problems = reference_problems(spec, topology)
    if problems:
        raise DrillError(source, problems)
    return Drill(spec=spec, topology=topology, source=source)


def _topology_file(name: str, drill: Path) -> tuple[dict[str, Any], str]:
    """The raw mapping of the topology file a drill names, which must be one."""
    source = str(drill)
    topo_path = (drill.parent / name).resolve()
    if topo_path == drill.resolve():
        raise DrillError(source, [Problem("topology", "names this drill file itself, "
                                          "not a topology")])
    if not topo_path.exists():
        raise DrillError(source, [Problem("topology", f"no such file: {cut(name, 200)}")])
    stat = topo_path.stat()
    raw = copy.deepcopy(_read_topology(topo_path, stat.st_mtime_ns, stat.st_size))
    refused = not_a_topology(raw)
    if refused:
        raise DrillError(source, [Problem("topology", f"{cut(name, 200)}: {refused}")])
    return raw, str(topo_path)


@functools.lru_cache(maxsize=32)
def _read_topology(path: Path, _mtime_ns: int, _size: int) -> dict[str, Any]:
    """A topology file's mapping, read once per version of the file (its mtime and size
    are part of the key): a sweep of random drills loads the same topology for every drill,
    and parsing its YAML was ~11 % of a drill's CPU. Callers get a deep copy."""
    return read_mapping(path, TopologyError)


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any],
                    source: str) -> dict[str, Any]:
    """Apply 'section.name.field: value' changes to a copy of a raw topology mapping."""
    data = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = key.split(".")
        where = f"topology_overrides.{key_text(key)}"
        node: Any = data
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                found = next((item for item in node
                              if isinstance(item, dict) and item.get("name") == part), None)
                if found is None:
                    within = cut(".".join(parts[:depth])) or "topology"
                    raise DrillError(source, [Problem(where, f"no item named {shown(part)} "
                                                      f"in {within}")])
                node = found
            elif isinstance(node, dict):
                if part not in node:
                    raise DrillError(source, [Problem(where,
                                                      f"the topology has no {shown(part)} here")])
                node = node[part]
            else:
                raise DrillError(source, [Problem(where, f"cannot descend into {shown(part)}")])
        if not isinstance(node, dict):
            raise DrillError(source, [Problem(where, "does not name a field")])
        node[parts[-1]] = value
    return data
