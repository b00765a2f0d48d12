"""DRBD state expectations, over the per-node status an Observation carries.

Observation.drbd is `resource -> host -> fields`, with the fields `drbdadm status`
(DRBD 8.4 names) reports: `role` (Primary/Secondary), `disk` (UpToDate, Inconsistent,
Outdated, Diskless, DUnknown), `connection` (StandAlone, WFConnection, Connected,
SyncSource, SyncTarget), `peer_role`, `peer_disk`; and `split_brain`: true once the
node detected a split brain on reconnect (DRBD logs "Split-Brain detected" and, under
the `disconnect` policies, drops to StandAlone). Expectations name any of these fields.

An after-sb policy that resolves a split brain automatically reconnects and resyncs,
so the final status no longer shows it; pass the detections seen during the drill
(from the kernel log or the lab trace) as `detected`, or let the backend put them in
`observation.extra["drbd_split_brains"]` (resource -> hosts).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from stackdrill.backends.base import Observation
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


def split_brain_detected(nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The nodes of one resource that report a detected split brain."""
    return sorted(h for h, f in nodes.items() if f.get("split_brain"))


def _allowed(value: str | tuple[str, ...]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


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
        r: set(hosts) for r, hosts in observation.extra.get("drbd_split_brains", {}).items()
    }
    for r, hosts in (detected or {}).items():
        seen_sb.setdefault(r, set()).update(hosts)
    exps = list(expectations)
    if not exps:
        return CheckResult.not_run(name, "no DRBD expectation was declared")
    unseen = sorted(
        {
            f"{e.resource}@{e.host}" if e.host else e.resource
            for e in exps
            if e.resource not in observation.drbd
            or (e.host is not None and e.host not in observation.drbd[e.resource])
        }
    )
    if unseen:
        return CheckResult.not_run(name, "backend did not observe DRBD " + ", ".join(unseen))
    problems: list[str] = []
    seen: dict[str, dict[str, dict[str, Any]]] = {}
    for exp in exps:
        nodes = observation.drbd[exp.resource]
        hosts = [exp.host] if exp.host else sorted(nodes)
        for host in hosts:
            fields = nodes[host]
            seen.setdefault(exp.resource, {})[host] = dict(fields)
            for key, want in sorted(exp.fields.items()):
                got = fields.get(key)
                if got is None or str(got) not in _allowed(want):
                    wanted = "|".join(_allowed(want))
                    problems.append(f"{exp.resource}@{host}: {key} is {got}, expected {wanted}")
        if exp.split_brain is not None:
            sb = sorted(set(split_brain_detected(nodes)) | seen_sb.get(exp.resource, set()))
            if exp.split_brain and not sb:
                problems.append(f"{exp.resource}: no split brain detected, expected one")
            if not exp.split_brain and sb:
                problems.append(f"{exp.resource}: split brain detected on {', '.join(sb)}")
    return CheckResult.of(name, problems, f"{len(exps)} DRBD expectation(s) hold", observed=seen)
