"""The gate's drills and topology as YAML files, so one drill of a gate can be rerun with
`stackdrill run` exactly as the gate ran it (same schedule, expectations and seed).

Defaults are left out, as a person writes a drill, except the `check` and `kind` tags
and `tool`/`op` tags that say which expectation, fault or command each entry is.
"""

from __future__ import annotations

from typing import Any

import yaml

from stackdrill.drill.model import DrillSpec
from stackdrill.topology import Topology

HEADER = "# written by stackdrill gate; rerun with: stackdrill run THIS-FILE\n"


def topology_yaml(topology: Topology) -> str:
    data = topology.model_dump(mode="json", exclude_defaults=True)
    return "# written by stackdrill gate\n" + yaml.safe_dump(data, sort_keys=False)


def drill_data(spec: DrillSpec, topology: str, seed: int) -> dict[str, Any]:
    """The drill as a drill file's mapping, naming `topology` (a path relative to the
    drill file) and the seed the gate ran it with."""
    data = spec.model_dump(mode="json", exclude_defaults=True)
    data["topology"], data["seed"] = topology, seed
    data["expect"] = [{"check": e.check, **d} for e, d in zip(spec.expect, data.get(
        "expect", [{}] * len(spec.expect)), strict=True)]
    steps = data.get("schedule", [])
    for step, dumped in zip(spec.schedule, steps, strict=True):
        if step.inject is not None:
            dumped["inject"] = {"kind": step.inject.kind, **dumped["inject"]}
        if step.run is not None:  # `tool` (and `op`) say which command it is
            tags = {k: getattr(step.run, k) for k in ("tool", "op") if hasattr(step.run, k)}
            dumped["run"] = {**tags, **dumped.get("run", {})}
        if step.recover is not None and "recover" not in dumped:
            dumped["recover"] = {}
    return data


def drill_yaml(spec: DrillSpec, topology: str, seed: int) -> str:
    return HEADER + yaml.safe_dump(drill_data(spec, topology, seed), sort_keys=False)
