"""DRBD state expectations, over the per-node status an Observation carries.

Observation.drbd is `resource -> host -> DrbdNodeStatus`, what `drbdadm status` (DRBD
8.4 names) reports: `role` (Primary/Secondary), `disk` (UpToDate, Inconsistent,
Outdated, Diskless, DUnknown), `connection` (StandAlone, WFConnection, Connected,
SyncSource, SyncTarget), `peer_role`, `peer_disk`; and `split_brain`: true once the
node detected a split brain on reconnect (DRBD logs "Split-Brain detected" and, under
the `disconnect` policies, drops to StandAlone). Expectations name any of the first five.

An after-sb policy that resolves a split brain automatically reconnects and resyncs,
so the final status no longer shows it; pass the detections seen during the drill
(from the kernel log or the lab trace) as `detected`, or let the backend report them
in `observation.split_brains` (resource -> hosts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stackdrill.api import DrbdNodeStatus, Observation
from stackdrill.checks.result import CheckResult

NAME = "drbd_state"


class DrbdExpectation(BaseModel):
    """What one resource (on one node, or on every observed node) must look like.

    `fields` maps a status field to the value, or the tuple of values, it may have:
    `{"role": "Primary", "disk": ("UpToDate", "Diskless")}`. `split_brain` True
    demands that a split brain was detected, False that none was."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    resource: str
    host: str | None = Field(default=None, description="one node, or every node when omitted")
    fields: dict[str, str | tuple[str, ...]] = Field(default_factory=dict)
    split_brain: bool | None = None

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str | tuple[str, ...]]
                      ) -> dict[str, str | tuple[str, ...]]:
        unknown = sorted(set(value) - set(DrbdNodeStatus.FIELDS))
        if unknown:
            raise ValueError(f"unknown DRBD status field(s) {', '.join(unknown)} (known: "
                             f"{', '.join(DrbdNodeStatus.FIELDS)})")
        return value


def split_brain_detected(nodes: Mapping[str, DrbdNodeStatus]) -> list[str]:
    """The nodes of one resource that report a detected split brain."""
    return sorted(h for h, st in nodes.items() if st.split_brain)


def _allowed(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


def _unseen(observation: Observation, exps: list[DrbdExpectation]) -> list[str]:
    """'r0' or 'r0@host' for each resource or node an expectation names that was not seen."""
    return sorted({
        f"{e.resource}@{e.host}" if e.host else e.resource
        for e in exps
        if e.resource not in observation.drbd
        or (e.host is not None and e.host not in observation.drbd[e.resource])
    })


def _field_problems(exp: DrbdExpectation, host: str, status: DrbdNodeStatus) -> list[str]:
    problems = []
    for key, want in sorted(exp.fields.items()):
        got = status.value_of(key)
        if got not in _allowed(want):
            problems.append(f"{exp.resource}@{host}: {key} is {got}, expected "
                            f"{'|'.join(_allowed(want))}")
    return problems


def _split_brain_problems(exp: DrbdExpectation, nodes: Mapping[str, DrbdNodeStatus],
                          seen_sb: set[str]) -> list[str]:
    """Whether a split brain was detected (in the final status or during the drill) as
    `exp.split_brain` demands."""
    if exp.split_brain is None:
        return []
    sb = sorted(set(split_brain_detected(nodes)) | seen_sb)
    if exp.split_brain and not sb:
        return [f"{exp.resource}: no split brain detected, expected one"]
    if not exp.split_brain and sb:
        return [f"{exp.resource}: split brain detected on {', '.join(sb)}"]
    return []


def drbd_state(
    observation: Observation,
    expectations: Iterable[DrbdExpectation],
    *,
    detected: Mapping[str, Iterable[str]] | None = None,
    name: str = NAME,
) -> CheckResult:
    """Every expectation holds. A resource or node the backend did not observe at all
    makes the check not run (it cannot pass on data it never saw). `detected`: resource
    -> hosts that detected a split brain at any time during the drill."""
    seen_sb: dict[str, set[str]] = {
        r: set(hosts) for r, hosts in observation.split_brains.items()
    }
    for r, hosts in (detected or {}).items():
        seen_sb.setdefault(r, set()).update(hosts)
    exps = list(expectations)
    if not exps:
        return CheckResult.not_run(name, "no DRBD expectation was declared")
    unseen = _unseen(observation, exps)
    if unseen:
        return CheckResult.not_run(name, "backend did not observe DRBD " + ", ".join(unseen))
    problems: list[str] = []
    seen: dict[str, dict[str, dict[str, str]]] = {}
    for exp in exps:
        nodes = observation.drbd[exp.resource]
        for host in [exp.host] if exp.host else sorted(nodes):
            status = nodes[host]
            seen.setdefault(exp.resource, {})[host] = {
                f: status.value_of(f) for f in DrbdNodeStatus.FIELDS}
            problems += _field_problems(exp, host, status)
        problems += _split_brain_problems(exp, nodes, seen_sb.get(exp.resource, set()))
    return CheckResult.of(name, problems, f"{len(exps)} DRBD expectation(s) hold", observed=seen)
