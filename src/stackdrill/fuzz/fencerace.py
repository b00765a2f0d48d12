"""A hung DRBD Primary the engine fences may thaw just before the power-off lands and
write alone first (`thawed_while_fenced`). (A cluster's own fence race, on a split of its
network, is `oracle._cluster_fences`.)"""

from __future__ import annotations

from stackdrill.drill.model import Drill
from stackdrill.faults import HostHang
from stackdrill.fuzz.targets import Targets
from stackdrill.recovery.config import RecoveryConfig


def thawed_while_fenced(drill: Drill, config: RecoveryConfig | None = None
                        ) -> tuple[float | None, frozenset[str]]:
    """(when, DRBD resources) a hung Primary may have written alone just before the engine's
    power-off landed: the engine declares a host down once its heartbeat is older than the
    grace (its last beat came up to one interval before the hang) and powers it off a few
    seconds later; a hang healed in that window thaws a host whose peer dropped the link long
    ago. With resource-only fencing nothing freezes its I/O (drbd-8.4 drbd_state.c
    sanitize_state: `if (fp == FP_STONITH && …) ns.susp_fen = 1`, stonith only), so its
    guests' writes are acknowledged on its disk alone — then the power-off takes that disk
    away. Its peer is stale (the engine refuses to start from
    it: the instances may be unrecoverable) and the writes acked after the hang are lost.
    A hang healed earlier rejoins unfenced; one healed later thaws a host already off."""
    cfg = config or RecoveryConfig()
    earliest = cfg.grace_s - cfg.heartbeat_interval_s
    latest = cfg.grace_s + cfg.heartbeat_interval_s  # detection, poll and IPMI, with margin
    healed = {s.heal: s.at for s in drill.spec.schedule if s.heal is not None}
    compute = set(Targets.of(drill.topology).compute)
    times: list[float] = []
    hit: set[str] = set()
    for step, fault in drill.faults():
        if not isinstance(fault, HostHang) or fault.host not in compute \
                or step.id not in healed or not earliest <= healed[step.id] - step.at <= latest:
            continue
        for res in drill.topology.drbd:
            if fault.host in res.primary:
                times.append(step.at)
                hit.add(res.name)
    return (min(times) if times else None), frozenset(hit)
