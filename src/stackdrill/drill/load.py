"""Load a drill: parse YAML, validate, resolve its topology, check every name it uses."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stackdrill.api.commands import ProbeCommand
from stackdrill.drill.model import Drill, DrillSpec
from stackdrill.errors import DrillError, Problem, TopologyError
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


def reference_problems(spec: DrillSpec, topo: Topology) -> list[Problem]:
    """Names in the schedule and expectations that the topology does not have."""
    hosts = {h.name for h in topo.hosts}
    nets = {n.name for n in topo.networks}
    overlays = {o.name for o in topo.overlays}
    instances = {i.name for i in topo.instances}
    resources = {r.name for r in topo.drbd}
    vgs = {v.name for v in topo.volume_groups}
    clusters = {c.name for c in topo.clusters}
    known = {"host": hosts, "network": nets, "overlay": overlays, "resource": resources,
             "vg": vgs, "cluster": clusters, "victim": hosts, "src": instances, "dst": instances}
    out: list[Problem] = []
    ids: dict[str, int] = {}
    labels: set[str] = set()
    for i, step in enumerate(spec.schedule):
        base = f"schedule[{i}]"
        if step.id is not None:
            if step.id in ids:
                out.append(Problem(f"{base}.id", f"duplicate id {step.id!r}"))
            ids[step.id] = i
        if step.at > spec.duration_s:
            out.append(Problem(f"{base}.at", f"{step.at} s is after the drill ends "
                               f"({spec.duration_s} s)"))
        if step.inject is not None:
            fault = step.inject
            for key, names in known.items():
                value = getattr(fault, key, None)
                if isinstance(value, str) and value not in names:
                    out.append(Problem(f"{base}.inject.{key}", f"unknown {key} {value!r}"))
            for g, group in enumerate(getattr(fault, "groups", ()) or ()):
                for h, host in enumerate(group):
                    if host not in hosts:
                        out.append(Problem(f"{base}.inject.groups[{g}][{h}]",
                                           f"unknown host {host!r}"))
            disk = getattr(fault, "disk", None)
            if disk is not None and fault.targets()[0] in hosts:
                host = topo.host(fault.targets()[0])
                if not any(d.name == disk for d in host.disks):
                    out.append(Problem(f"{base}.inject.disk",
                                       f"host {host.name!r} has no disk {disk!r}"))
        if step.heal is not None and step.heal not in ids:
            out.append(Problem(f"{base}.heal", f"no earlier step with id {step.heal!r}"))
        if step.run is not None:
            for key, names in known.items():
                value = getattr(step.run, key, None)
                if isinstance(value, str) and value not in names:
                    out.append(Problem(f"{base}.run.{key}", f"unknown {key} {value!r}"))
            if isinstance(step.run, ProbeCommand):
                labels.add(step.run.label)
        if step.recover is not None:
            for j, host in enumerate(step.recover.reserved_hosts):
                if host not in hosts:
                    out.append(Problem(f"{base}.recover.reserved_hosts[{j}]",
                                       f"unknown host {host!r}"))
            if step.recover.host is not None and step.recover.host not in hosts:
                out.append(Problem(f"{base}.recover.host",
                                   f"unknown host {step.recover.host!r}"))
    for i, exp in enumerate(spec.expect):
        base = f"expect[{i}]"
        for key, names in (("resource", resources), ("vg", vgs), ("cluster", clusters),
                           ("host", hosts)):
            value = getattr(exp, key, None)
            if isinstance(value, str) and value not in names:
                out.append(Problem(f"{base}.{key}", f"unknown {key} {value!r}"))
        for j, probe in enumerate(getattr(exp, "probes", ())):
            if probe not in labels:
                out.append(Problem(f"{base}.probes[{j}]", f"no probe step labelled {probe!r}"))
        for key in ("instances",):
            value = getattr(exp, key, None)
            if isinstance(value, tuple):
                for j, name in enumerate(value):
                    if name not in instances:
                        out.append(Problem(f"{base}.{key}[{j}]", f"unknown instance {name!r}"))
    if isinstance(spec.workload.instances, tuple):
        for j, name in enumerate(spec.workload.instances):
            if name not in instances:
                out.append(Problem(f"workload.instances[{j}]", f"unknown instance {name!r}"))
    return out
