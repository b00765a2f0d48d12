"""What a drill's schedule and expectations name must exist, and its schedule must be
able to happen: every step before the drill ends, every heal after its inject (by time,
not list order) and only once, every host, DRBD node and cluster node an expectation
names present in the topology. A drill that cannot do what it says is refused, never
run to a verdict that checked nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from stackdrill.api.commands import ClusterCommand, Command, ProbeCommand, ThroughputCommand
from stackdrill.checks.expectations import Expectation
from stackdrill.drill.model import DrillSpec, Step
from stackdrill.echo import key_text, shown
from stackdrill.errors import Problem
from stackdrill.faults import UNHEALABLE_WHY, Fault
from stackdrill.topology import Topology

# A workload keeps every write it made (the history the checks read): bounded per instance.
# The shipped drills make at most ~30000 (protocol-a-failover: 0.02 s over 600 s).
MAX_WRITES_PER_INSTANCE = 100_000


class _Scope:
    """What a drill's references are checked against: every name of its topology, by the
    field that may hold it; its length; what the schedule declares (fault ids and when
    they are injected and healed, probe labels an expectation may name)."""

    def __init__(self, topo: Topology, duration_s: float, schedule: tuple[Step, ...]) -> None:
        self.topo = topo
        self.duration_s = duration_s
        self.schedule = schedule
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
            "dst": self.instances, "instance": self.instances}
        # expectation fields -> the names they may hold
        self.expect_fields: dict[str, set[str]] = {
            "resource": resources, "vg": vgs, "cluster": clusters, "host": self.hosts}
        # expectation fields holding several hosts
        self.expect_host_lists = ("hosts", "hosts_after")
        self.fault_ids: set[str] = set()
        self.injected_at: dict[str, float] = {}  # fault id -> when its (first) inject happens
        self.kinds: dict[str, str] = {}  # fault id -> its kind
        for step in schedule:
            if step.id is not None and step.inject is not None:
                self.injected_at.setdefault(step.id, step.at)
                self.kinds.setdefault(step.id, step.inject.kind)
        self.healed: dict[str, int] = {}  # fault id -> index of the step that heals it
        self.probe_labels: dict[str, str] = {}  # label of a probe step -> its tool
        self.observe_labels: set[str] = set()  # labels of observe steps (checkpoints)
        self.step_index = 0  # the schedule step being checked


def _unknown(at: str, value: object, fields: dict[str, set[str]]) -> Iterator[Problem]:
    """Each named field of `value` (a fault, command or expectation) that names nothing."""
    for key, names in fields.items():
        name = getattr(value, key, None)
        if isinstance(name, str) and name not in names:
            yield Problem(f"{at}.{key}", f"unknown {key} {shown(name)}")


def _unknown_in(at: str, names: object, known: set[str], what: str) -> Iterator[Problem]:
    if isinstance(names, tuple | dict):
        for j, name in enumerate(names):
            if name not in known:
                where = f"{at}[{j}]" if isinstance(names, tuple) else f"{at}.{key_text(name)}"
                yield Problem(where, f"unknown {what} {shown(name)}")


def _step_id(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    if step.id is not None:
        if step.id in known.fault_ids:
            yield Problem(f"{at}.id", f"duplicate id {shown(step.id)}")
        known.fault_ids.add(step.id)


def _step_time(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    if step.at >= known.duration_s:
        yield Problem(f"{at}.at", f"{step.at} s is not before the drill ends "
                      f"({known.duration_s} s): it would never happen")


def _injected(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    """The fault's named fields, the hosts of a partition's groups or a cut's pairs, a
    failing disk."""
    fault = step.inject
    if fault is None:
        return
    yield from _unknown(f"{at}.inject", fault, known.step_fields)
    for g, group in enumerate(getattr(fault, "groups", ()) or ()):
        yield from _unknown_in(f"{at}.inject.groups[{g}]", group, known.hosts, "host")
    for p, pair in enumerate(getattr(fault, "pairs", ()) or ()):
        yield from _unknown_in(f"{at}.inject.pairs[{p}]", pair, known.hosts, "host")
        if pair[0] == pair[1]:
            yield Problem(f"{at}.inject.pairs[{p}]", f"a host cannot be cut from itself "
                          f"({shown(pair[0])})")
    disk = getattr(fault, "disk", None)
    if disk is not None and fault.targets()[0] in known.hosts:
        host = known.topo.host(fault.targets()[0])
        if not any(d.name == disk for d in host.disks):
            yield Problem(f"{at}.inject.disk", f"host {host.name!r} has no disk {shown(disk)}")


def _healed(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    """A heal names an injected fault, comes after it in time, and is its only heal."""
    if step.heal is None:
        return
    injected = known.injected_at.get(step.heal)
    if injected is None:
        yield Problem(f"{at}.heal", f"no earlier step with id {shown(step.heal)}")
        return
    kind = known.kinds.get(step.heal)
    if kind in UNHEALABLE_WHY:
        yield Problem(f"{at}.heal", f"{kind} cannot be healed: {UNHEALABLE_WHY[kind]}")
    if step.at < injected:
        yield Problem(f"{at}.at", f"the heal of {step.heal!r} at {step.at} s comes before "
                      f"its inject at {injected} s: it would heal nothing")
    first = known.healed.setdefault(step.heal, known.step_index)
    if first != known.step_index:
        yield Problem(f"{at}.heal", f"{step.heal!r} is already healed by schedule[{first}]")


def _ran(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    if step.run is None:
        return
    yield from _unknown(f"{at}.run", step.run, known.step_fields)
    if isinstance(step.run, ProbeCommand | ThroughputCommand):
        known.probe_labels[step.run.label] = step.run.tool
    if isinstance(step.run, ClusterCommand):
        yield from _cluster_node(f"{at}.run", step.run, known)


def _cluster_node(at: str, command: ClusterCommand, known: _Scope) -> Iterator[Problem]:
    """A cluster command's host (or victim) is a node of that cluster."""
    spec = next((c for c in known.topo.clusters if c.name == command.cluster), None)
    key = "host" if command.host is not None else "victim"
    if spec is not None and command.node in known.hosts and command.node not in spec.nodes:
        yield Problem(f"{at}.{key}", f"{shown(command.node)} is not a node of cluster "
                                     f"{shown(command.cluster)}")


def _observed(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    """An observe step's label names one checkpoint."""
    if step.observe is None:
        return
    if step.observe in known.observe_labels:
        yield Problem(f"{at}.observe", f"duplicate observe label {shown(step.observe)}")
    known.observe_labels.add(step.observe)


def _recovering(at: str, step: Step, known: _Scope) -> Iterator[Problem]:
    recover = step.recover
    if recover is None:
        return
    yield from _unknown_in(f"{at}.recover.reserved_hosts", recover.reserved_hosts,
                           known.hosts, "host")
    if recover.host is not None and recover.host not in known.hosts:
        yield Problem(f"{at}.recover.host", f"unknown host {shown(recover.host)}")


# What every schedule step is checked for, in this order (an id is known to the heals of
# later steps; a probe's or observe step's label to the expectations). A step has one of
# inject, heal, run, observe, recover: the checks of the others find nothing to say.
_STEP_CHECKS: tuple[Callable[[str, Step, _Scope], Iterator[Problem]], ...] = (
    _step_id, _step_time, _injected, _healed, _ran, _observed, _recovering)


def _expected(at: str, expectation: Expectation, known: _Scope) -> Iterator[Problem]:
    yield from _unknown(at, expectation, known.expect_fields)
    for field in known.expect_host_lists:
        yield from _unknown_in(f"{at}.{field}", getattr(expectation, field, None),
                               known.hosts, "host")
    yield from _probes(at, expectation, known)
    yield from _unknown_in(f"{at}.instances", getattr(expectation, "instances", None),
                           known.instances, "instance")
    placed = getattr(expectation, "placed", None) or {}
    yield from _unknown_in(f"{at}.placed", placed, known.instances, "instance")
    for inst, host in placed.items():
        if host not in known.hosts:
            yield Problem(f"{at}.placed.{key_text(inst)}", f"unknown host {shown(host)}")
    yield from _members(at, expectation, known)
    yield from _command_steps(at, expectation, known)
    checkpoint = getattr(expectation, "at", None)
    if checkpoint is not None and checkpoint not in known.observe_labels:
        yield Problem(f"{at}.at", f"no observe step labelled {shown(checkpoint)}")


# an expectation reading probes -> the tool of the steps it reads
_PROBE_TOOL = {"overlay": "probe", "throughput": "iperf3"}


def _probes(at: str, expectation: Expectation, known: _Scope) -> Iterator[Problem]:
    """An overlay check names overlay probe steps, a throughput check iperf3 steps."""
    wanted = _PROBE_TOOL.get(expectation.check, "probe")
    for j, label in enumerate(getattr(expectation, "probes", ())):
        tool = known.probe_labels.get(label)
        if tool is None:
            yield Problem(f"{at}.probes[{j}]", f"no {wanted} step labelled {shown(label)}")
        elif tool != wanted:
            yield Problem(f"{at}.probes[{j}]", f"the {expectation.check} check reads "
                          f"{wanted} steps; {shown(label)} labels a step of tool {tool}")


def _command_steps(at: str, expectation: Expectation, known: _Scope) -> Iterator[Problem]:
    """`commands` names schedule indexes of run steps (probes are the overlay and
    throughput checks')."""
    for field in ("succeeded", "failed", "pending"):
        for j, index in enumerate(getattr(expectation, field, ())):
            step = known.schedule[index] if index < len(known.schedule) else None
            if step is None or step.run is None \
                    or isinstance(step.run, ProbeCommand | ThroughputCommand):
                yield Problem(f"{at}.{field}[{j}]",
                              f"schedule[{index}] is not a command step (lvm, drbdadm, "
                              "disk or cluster)")


def _members(at: str, expectation: Expectation, known: _Scope) -> Iterator[Problem]:
    """DRBD `nodes:` must be nodes of the resource, `quorate:` nodes of the cluster."""
    nodes = getattr(expectation, "nodes", None)
    resource = getattr(expectation, "resource", None)
    if isinstance(nodes, dict) and resource in {r.name for r in known.topo.drbd}:
        members = set(known.topo.drbd_resource(str(resource)).nodes)
        yield from _unknown_in(f"{at}.nodes", nodes, members, f"node of {resource}")
    quorate = getattr(expectation, "quorate", None)
    cluster = getattr(expectation, "cluster", None)
    clusters = {c.name: c for c in known.topo.clusters}
    if isinstance(quorate, dict) and cluster in clusters:
        members = set(clusters[str(cluster)].nodes)
        yield from _unknown_in(f"{at}.quorate", quorate, members, f"node of {cluster}")


def reference_problems(spec: DrillSpec, topo: Topology) -> list[Problem]:
    """Names in the schedule and expectations that the topology does not have, and steps
    that could never happen."""
    known = _Scope(topo, spec.duration_s, tuple(spec.schedule))
    out: list[Problem] = []
    for i, step in enumerate(spec.schedule):
        known.step_index = i
        for check in _STEP_CHECKS:
            out += check(f"schedule[{i}]", step, known)
    for i, expectation in enumerate(spec.expect):
        out += _expected(f"expect[{i}]", expectation, known)
    out += _unknown_in("workload.instances", spec.workload.instances, known.instances,
                       "instance")
    out += _workload_problems(spec)
    return out


def _workload_problems(spec: DrillSpec) -> Iterator[Problem]:
    """The workload writes at least once before the drill ends, and not without bound."""
    interval, duration = spec.workload.write_interval_s, spec.duration_s
    at = "workload.write_interval_s"
    if interval >= duration:
        yield Problem(at, f"{interval} s is not shorter than the drill ({duration} s): "
                      "no write would be made, and acked_writes would check nothing")
    elif duration / interval > MAX_WRITES_PER_INSTANCE:
        yield Problem(at, f"{interval} s over {duration} s is more than "
                      f"{MAX_WRITES_PER_INSTANCE} writes per instance: raise the interval "
                      f"to at least {duration / MAX_WRITES_PER_INSTANCE:g} s")


def fault_problems(fault: Fault, topo: Topology) -> list[Problem]:
    """A fault given outside a drill (the CLI's `inject`), checked against the topology by
    the same checks as a schedule's fault; paths read `inject.host`, `inject.disk`."""
    step = Step(at=0, inject=fault)
    found = _injected("", step, _Scope(topo, 0.0, (step,)))
    return [Problem(p.path.lstrip("."), p.message) for p in found]


def command_problems(command: Command, topo: Topology) -> list[Problem]:
    """An operator command given outside a drill (the CLI's `exec`), checked against the
    topology by the same checks as a schedule's; paths read `run.host`, `run.resource`."""
    step = Step(at=0, run=command)
    found = _ran("", step, _Scope(topo, 0.0, (step,)))
    return [Problem(p.path.lstrip("."), p.message) for p in found]
