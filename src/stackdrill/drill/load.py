"""Load a drill: parse YAML, validate, resolve its topology, check every name it uses."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stackdrill.api.commands import ProbeCommand
from stackdrill.checks.expectations import Expectation
from stackdrill.drill.model import Drill, DrillSpec, Step
from stackdrill.errors import DrillError, Problem, TopologyError
from stackdrill.faults import Fault
from stackdrill.topology import Topology, parse_topology
from stackdrill.yamlio import problems_from_validation, read_mapping


def load_drill(path: str | Path) -> Drill:
    path = Path(path)
    return parse_drill(read_mapping(path, DrillError), path)


def parse_drill(data: dict[str, Any], path: Path) -> Drill:
    source = str(path)
    try:
        spec = DrillSpec.model_validate(data)
    except ValidationError as exc:
        raise DrillError(source, problems_from_validation(exc)) from None
    if isinstance(spec.topology, str):
        topo_path = (path.parent / spec.topology).resolve()
        if not topo_path.exists():
            raise DrillError(source, [Problem("topology", f"no such file: {spec.topology}")])
        raw = read_mapping(topo_path, TopologyError)
        topo_source, prefix = str(topo_path), ""
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


def apply_overrides(raw: dict[str, Any], overrides: dict[str, Any],
                    source: str) -> dict[str, Any]:
    """Apply 'section.name.field: value' changes to a copy of a raw topology mapping."""
    data = copy.deepcopy(raw)
    for key, value in overrides.items():
        parts = key.split(".")
        node: Any = data
        for depth, part in enumerate(parts[:-1]):
            if isinstance(node, list):
                found = next((item for item in node
                              if isinstance(item, dict) and item.get("name") == part), None)
                if found is None:
                    raise DrillError(source, [Problem(f"topology_overrides.{key}",
                                                      f"no item named {part!r} in "
                                                      f"{'.'.join(parts[:depth]) or 'topology'}")])
                node = found
            elif isinstance(node, dict):
                if part not in node:
                    raise DrillError(source, [Problem(f"topology_overrides.{key}",
                                                      f"the topology has no {part!r} here")])
                node = node[part]
            else:
                raise DrillError(source, [Problem(f"topology_overrides.{key}",
                                                  f"cannot descend into {part!r}")])
        if not isinstance(node, dict):
            raise DrillError(source, [Problem(f"topology_overrides.{key}",
                                              "does not name a field")])
        node[parts[-1]] = value
    return data


class _Scope:
    """What a drill's references are checked against: every name of its topology, by the
    field that may hold it; its length; what the schedule has declared so far (fault ids
    a later heal may name, probe labels an expectation may)."""

    def __init__(self, topo: Topology, duration_s: float) -> None:
        self.topo = topo
        self.duration_s = duration_s
        self.hosts = {h.name for h in topo.hosts}
        self.instances = {i.name for i in topo.instances}
        resources = {r.name for r in topo.drbd}
        vgs = {v.name for v in topo.volume_groups}
        clusters = {c.name for c in topo.clusters}
        # step fields (faults and commands) -> the names they may hold
        self.step_fields: dict[str, set[str]] = {
            "host": self.hosts, "network": {n.name for n in topo.networks},
            "overlay": {o.name for o in topo.overlays}, "resource": resources, "vg": vgs,
            "cluster": clusters, "victim": self.hosts, "src": self.instances,
            "dst": self.instances}
        # expectation fields -> the names they may hold
        self.expect_fields: dict[str, set[str]] = {
            "resource": resources, "vg": vgs, "cluster": clusters, "host": self.hosts}
        self.fault_ids: set[str] = set()
        self.probe_labels: set[str] = set()


def _unknown(at: str, value: object, fields: dict[str, set[str]]) -> Iterator[Problem]:
    """Each named field of `value` (a fault, command or expectation) that names nothing."""
    for key, names in fields.items():
        name = getattr(value, key, None)
        if isinstance(name, str) and name not in names:
            yield Problem(f"{at}.{key}", f"unknown {key} {name!r}")


def _unknown_instances(at: str, names: object, known: _Scope) -> Iterator[Problem]:
    if isinstance(names, tuple):
        for j, name in enumerate(names):
            if name not in known.instances:
                yield Problem(f"{at}[{j}]", f"unknown instance {name!r}")


def _step_id(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    if step.id is not None:
        if step.id in known.fault_ids:
            yield Problem(f"{at}.id", f"duplicate id {step.id!r}")
        known.fault_ids.add(step.id)


def _step_time(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    if step.at > known.duration_s:
        yield Problem(f"{at}.at", f"{step.at} s is after the drill ends ({known.duration_s} s)")


def _injected(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    """The fault's named fields, the hosts of a partition's groups, a failing disk."""
    fault = step.inject
    if fault is None:
        return
    yield from _unknown(f"{at}.inject", fault, known.step_fields)
    for g, group in enumerate(getattr(fault, "groups", ()) or ()):
        for h, host in enumerate(group):
            if host not in known.hosts:
                yield Problem(f"{at}.inject.groups[{g}][{h}]", f"unknown host {host!r}")
    disk = getattr(fault, "disk", None)
    if disk is not None and fault.targets()[0] in known.hosts:
        host = known.topo.host(fault.targets()[0])
        if not any(d.name == disk for d in host.disks):
            yield Problem(f"{at}.inject.disk", f"host {host.name!r} has no disk {disk!r}")


def _healed(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    if step.heal is not None and step.heal not in known.fault_ids:
        yield Problem(f"{at}.heal", f"no earlier step with id {step.heal!r}")


def _ran(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    if step.run is None:
        return
    yield from _unknown(f"{at}.run", step.run, known.step_fields)
    if isinstance(step.run, ProbeCommand):
        known.probe_labels.add(step.run.label)


def _recovering(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    recover = step.recover
    if recover is None:
        return
    for j, host in enumerate(recover.reserved_hosts):
        if host not in known.hosts:
            yield Problem(f"{at}.recover.reserved_hosts[{j}]", f"unknown host {host!r}")
    if recover.host is not None and recover.host not in known.hosts:
        yield Problem(f"{at}.recover.host", f"unknown host {recover.host!r}")


# What every schedule step is checked for, in this order (an id is known to the heals of
# later steps; a probe's label to the expectations). A step has one of inject, heal, run,
# recover: the checks of the other three find nothing to say.
_STEP_CHECKS: tuple[Callable[[str, Step, _Scope], Iterator[Problem]], ...] = (
    _step_id, _step_time, _injected, _healed, _ran, _recovering)


def _expected(at: str, expectation: Expectation, known: _Scope) -> Iterator[Problem]:
    yield from _unknown(at, expectation, known.expect_fields)
    for j, probe in enumerate(getattr(expectation, "probes", ())):
        if probe not in known.probe_labels:
            yield Problem(f"{at}.probes[{j}]", f"no probe step labelled {probe!r}")
    yield from _unknown_instances(f"{at}.instances", getattr(expectation, "instances", None),
                                  known)


def reference_problems(spec: DrillSpec, topo: Topology) -> list[Problem]:
    """Names in the schedule and expectations that the topology does not have."""
    known = _Scope(topo, spec.duration_s)
    out: list[Problem] = []
    for i, step in enumerate(spec.schedule):
        for check in _STEP_CHECKS:
            out += check(f"schedule[{i}]", step, known)
    for i, expectation in enumerate(spec.expect):
        out += _expected(f"expect[{i}]", expectation, known)
    out += _unknown_instances("workload.instances", spec.workload.instances, known)
    return out


def fault_problems(fault: Fault, topo: Topology) -> list[Problem]:
    """A fault given outside a drill (the CLI's `inject`), checked against the topology by
    the same checks as a schedule's fault; paths read `inject.host`, `inject.disk`."""
    found = _injected("", Step(at=0, inject=fault), _Scope(topo, 0.0))
    return [Problem(p.path.lstrip("."), p.message) for p in found]
