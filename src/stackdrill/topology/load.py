"""Load a topology from YAML: parse, validate types with pydantic, then check meaning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stackdrill.errors import Problem, TopologyError
from stackdrill.topology.model import Topology
from stackdrill.topology.semantic import semantic_problems
from stackdrill.yamlio import problems_from_validation, read_mapping


def load_topology(path: str | Path) -> Topology:
    """Read and fully validate a topology file; raise `TopologyError` naming what is wrong."""
    path = Path(path)
    return parse_topology(read_mapping(path, TopologyError), str(path))


def not_a_topology(data: dict[Any, Any]) -> str | None:
    """Why this mapping cannot be a topology at all (a drill; a password file that YAML
    happens to read as a mapping), said without echoing any of it."""
    if "topology" in data and "hosts" not in data:
        return "this is a drill, not a topology: run it, or name a topology file"
    if not any(key in Topology.model_fields for key in data):
        return ("not a topology: none of its keys is a topology's "
                f"({', '.join(list(Topology.model_fields)[:4])}, ...)")
    return None


def parse_topology(data: dict[str, Any], source: str, prefix: str = "") -> Topology:
    """Validate an already parsed mapping; `prefix` is its path inside an enclosing file."""
    refused = not_a_topology(data)
    if refused:
        raise TopologyError(source, [Problem(prefix, refused)])
    try:
        topology = Topology.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation(exc, data)
        problems = [_prefixed(p.path, p.message, prefix) for p in problems]
        raise TopologyError(source, problems) from None
    problems = semantic_problems(topology)
    if problems:
        raise TopologyError(source, [_prefixed(p.path, p.message, prefix) for p in problems])
    return topology


def _prefixed(path: str, message: str, prefix: str) -> Problem:
    if not prefix:
        return Problem(path, message)
    return Problem(f"{prefix}.{path}" if path else prefix, message)
