"""Judge a finished drill: run its declared expectations as checks and build the report.

Checks look at the lab's own ground truth (what runs where, what is on each
replica, the power and hypervisor events in the trace), never at what the
recovery engine claims it did.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from typing import Any

from stackdrill import checks
from stackdrill.api import CommandResult, DrbdNotice, Observation, StoredRecord, Traced, WriteOp
from stackdrill.checks import Checklist, CheckResult, DrbdExpectation
from stackdrill.checks.expectations import (
    ExpectAckedWrites,
    Expectation,
    ExpectBlocked,
    ExpectCleanedReturningHost,
    ExpectDrbd,
    ExpectExactlyOnce,
    ExpectFencingOrder,
    ExpectLvm,
    ExpectNoIoErrors,
    ExpectNotEvacuated,
    ExpectOverlay,
    ExpectQuorum,
    ExpectRecovered,
    ExpectSingleWriter,
    ExpectUnrecoverable,
    check_names,
)
from stackdrill.drill.runner import DrillRun
from stackdrill.recovery import InstanceState
from stackdrill.report.model import FaultRecord, InstanceReport, Report, TimelineEvent
from stackdrill.report.state import state_summary

OK_STATES = {InstanceState.RECOVERED, InstanceState.RESUMED, InstanceState.RUNNING}


class Judge:
    def __init__(self, run: DrillRun) -> None:
        self.run = run
        self.evidence = run.final
        self.topology = run.drill.topology
        self.obs: Observation = self.evidence.observation
        self.history: list[WriteOp] = list(self.evidence.history)
        self.stored: dict[str, dict[int, StoredRecord]] = self.evidence.stored
        self.tally = checks.tally_writes(self.history, self.stored)
        self.events: tuple[Traced, ...] = self.evidence.events
        self.outcomes = {o.name: o for r in run.recoveries for o in r.instances}

    # ------------------------------------------------------------ checks

    def checks(self) -> list[CheckResult]:
        expectations = self.run.drill.spec.expect
        names = check_names(expectations)
        checklist = Checklist(names)
        for exp, name in zip(expectations, names, strict=True):
            checklist.run(name, self._check, exp, name)
        return checklist.finish()

    def _check(self, exp: Expectation, name: str) -> CheckResult:
        topo = self.topology
        match exp:
            case ExpectExactlyOnce():
                return checks.exactly_once(self.obs, [i.name for i in topo.instances], name=name)
            case ExpectAckedWrites(max_lost=max_lost, predicted_lost=predicted):
                expected = None
                if predicted:
                    expected = self.evidence.predicted_lost_writes
                    if expected is None:
                        return CheckResult.not_run(name, f"backend {self.run.backend!r} "
                                                   "cannot predict lost writes")
                return checks.acked_writes(self.history, self.stored, name=name,
                                           max_lost=max_lost if max_lost is not None else 10**9,
                                           expected_lost=expected)
            case ExpectRecovered(instances=wanted, attach_mode=mode,
                                 hosts_after=targets):
                return self._recovered(name, wanted, mode, targets)
            case ExpectUnrecoverable(instances=names, reason_contains=fragment):
                return self._unrecoverable(name, names, fragment)
            case ExpectBlocked(hosts=hosts, reason_contains=fragment):
                return self._blocked(name, hosts, fragment)
            case ExpectNotEvacuated(hosts=hosts):
                return checks.not_evacuated(self.events, hosts, name=name)
            case ExpectLvm(vg=vg, damage_expected=damage):
                views = [v for v in self.obs.lvm if v.vg == vg]
                result = checks.lvm_consistency(views, name=name)
                return _expect_detection(result, damage, "LVM damage")
            case ExpectDrbd(resource=res, split_brain=sb, nodes=nodes):
                drbd = [DrbdExpectation(resource=res, split_brain=sb)] if sb is not None else []
                drbd += [DrbdExpectation(resource=res, host=h, fields=dict(f))
                         for h, f in nodes.items()]
                return checks.drbd_state(self.obs, drbd, name=name)
            case ExpectQuorum(cluster=cluster, quorate=expected):
                return self._quorum(name, cluster, expected)
            case ExpectOverlay(probes=labels, mtu=mtu, detects=detects):
                return self._overlay(name, labels, mtu, detects)
            case ExpectFencingOrder():
                return checks.fencing_order(self.events, name=name)
            case ExpectNoIoErrors():
                errors = [op for op in self.history if op.outcome == "fail"]
                detail = ", ".join(f"{op.instance}#{op.seq}@{op.completed:.1f}s"
                                   for op in errors[:8])
                return CheckResult.of(name, [f"{len(errors)} write(s) saw an I/O error: "
                                             f"{detail}"] if errors else [],
                                      f"{len(self.history)} writes, none saw an I/O error",
                                      io_errors=len(errors))
            case ExpectSingleWriter():
                return checks.single_writer(self.history, name=name)
            case ExpectCleanedReturningHost(host=host):
                return self._returning_clean(name, host)
        raise AssertionError(f"unhandled expectation {exp!r}")

    def _recovered(self, name: str, wanted: Any, mode: str | None,
                   targets: tuple[str, ...] = ()) -> CheckResult:
        if not self.run.recoveries:
            return CheckResult.not_run(name, "the recovery engine never ran")
        names = list(self.outcomes) if wanted == "all" else list(wanted)
        problems = []
        for inst in names:
            outcome = self.outcomes.get(inst)
            if outcome is None:
                problems.append(f"{inst}: not handled by the recovery engine")
            elif outcome.state not in OK_STATES:
                problems.append(f"{inst}: {outcome.state.value} ({outcome.reason})")
            elif mode is not None and outcome.attach_mode not in (mode, None):
                problems.append(f"{inst}: attached {outcome.attach_mode}, expected {mode}")
            elif targets and outcome.state is InstanceState.RECOVERED \
                    and outcome.host_after not in targets:
                problems.append(f"{inst}: recovered on {outcome.host_after}, expected on "
                                f"{', '.join(targets)}")
        moved = [o for o in self.outcomes.values() if o.state is InstanceState.RECOVERED]
        resumed = [o for o in self.outcomes.values() if o.state is InstanceState.RESUMED]
        if wanted == "all" and not moved and not resumed:
            problems.append("no instance was recovered or resumed: the failure the drill "
                            "expected recovery from never needed the engine")
        elsewhere = sum(o.host_after != o.host_before for o in moved)
        detail = (f"{len(names)} instance(s) fine: {elsewhere} recovered on another host, "
                  f"{len(moved) - elsewhere} restarted in place on a new volume path, "
                  f"{len(resumed)} resumed")
        return CheckResult.of(name, problems, detail, instances=names)

    def _unrecoverable(self, name: str, names: tuple[str, ...], fragment: str) -> CheckResult:
        if not self.run.recoveries:
            return CheckResult.not_run(name, "the recovery engine never ran")
        problems = []
        for inst in names:
            outcome = self.outcomes.get(inst)
            if outcome is None or outcome.state is not InstanceState.UNRECOVERABLE:
                state = outcome.state.value if outcome else "not handled"
                problems.append(f"{inst}: {state}, expected to be reported unrecoverable")
            elif not outcome.reason or fragment.lower() not in outcome.reason.lower():
                problems.append(f"{inst}: reason {outcome.reason!r} does not say {fragment!r}")
        reasons = "; ".join(f"{i}: {self.outcomes[i].reason}" for i in names
                            if i in self.outcomes)
        return CheckResult.of(name, problems, f"reported with reasons: {reasons}")

    def _blocked(self, name: str, hosts: tuple[str, ...], fragment: str) -> CheckResult:
        if not self.run.recoveries:
            return CheckResult.not_run(name, "the recovery engine never ran")
        blocked = {h: why for r in self.run.recoveries for h, why in r.blocked_hosts.items()}
        problems = []
        for host in hosts:
            why = blocked.get(host)
            if why is None:
                problems.append(f"{host}: not reported as blocking recovery")
            elif fragment.lower() not in why.lower():
                problems.append(f"{host}: reason {why!r} does not say {fragment!r}")
        for inst in self.run.drill.topology.instances:
            outcome = self.outcomes.get(inst.name)
            if inst.host in hosts and (outcome is None
                                       or outcome.state is not InstanceState.BLOCKED):
                state = outcome.state.value if outcome else "not handled"
                problems.append(f"{inst.name}: {state}, expected blocked on {inst.host}")
        reasons = "; ".join(f"{h}: {blocked[h]}" for h in hosts if h in blocked)
        return CheckResult.of(name, problems, f"recovery blocked: {reasons}")

    def _quorum(self, name: str, cluster: str, expected: dict[str, bool]) -> CheckResult:
        status = self.obs.quorum.get(cluster)
        if status is None:
            return CheckResult.not_run(name, f"cluster {cluster!r} was not observed")
        problems = []
        for host, want in expected.items():
            view = status.get(host)
            if view is None:
                problems.append(f"{host}: no quorum state (host down?)")
            elif view.quorate != want:
                problems.append(f"{host}: quorate={view.quorate}, expected {want}")
        return CheckResult.of(name, problems, ", ".join(
            f"{h} quorate={v}" for h, v in expected.items()))

    def _overlay(self, name: str, labels: tuple[str, ...], mtu: int,
                 detects: str | None) -> CheckResult:
        results = self.evidence.commands
        probes = []
        for label in labels:
            res = results.get(label)
            if res is None:
                return CheckResult.not_run(name, f"probe {label!r} never ran")
            if res.probe is None:  # the backend could not run it at all, and says why
                return CheckResult.not_run(name, f"probe {label!r} could not run: "
                                                 f"{res.detail or '?'}")
            probes.append(res.probe)
        parts = checks.overlay_checks(probes, expected_mtu=mtu)
        failed = [p for p in parts if not p.ok]
        merged = CheckResult.of(name, [f"{p.name}: {p.detail}" for p in failed],
                                "; ".join(p.detail for p in parts))
        if detects is None:
            return merged
        return _expect_detection(merged, True, detects, must_name=detects)

    def _returning_clean(self, name: str, host: str) -> CheckResult:
        stale = sorted(inst for inst, hosts in self.obs.running.items()
                       if host in hosts and len(hosts) > 1)
        moved_away = sorted(o.name for o in self.outcomes.values()
                            if o.host_before == host and o.host_after not in (host, None)
                            and host in self.obs.running.get(o.name, []))
        problems = [f"{inst} runs on {host} and elsewhere" for inst in stale]
        problems += [f"{inst} was evacuated but runs on {host} again" for inst in moved_away
                     if inst not in stale]
        return CheckResult.of(name, problems, f"{host} runs none of its evacuated instances")

    # ------------------------------------------------------------ report

    def report(self) -> Report:
        run = self.run
        results = self.checks()
        verdict = "pass" if results and all(c.ok for c in results) else "fail"
        return Report(
            drill=run.drill.name, backend=run.backend, seed=run.seed, verdict=verdict,
            trace_sha256=run.trace_sha256, topology=self.topology.name,
            duration=run.ended_at, instances=tuple(self._instances()), checks=tuple(results),
            faults=tuple(FaultRecord.of(f, at, healed) for at, f, healed in run.fault_log),
            timeline=tuple(self._timeline(results)), phases=self._phases(),
            steps=self._steps(), state_before=run.state_before,
            state_after=state_summary(self.obs),
            extra={"writes": len(self.history),
                   "commands": {label: _plain(res)
                                for label, res in sorted(self.evidence.commands.items())},
                   "drbd_events": self._drbd_events(),
                   "blocked_hosts": {h: why for r in run.recoveries
                                     for h, why in r.blocked_hosts.items()}},
        )

    def _fault_time(self, instance: str, until: float) -> float | None:
        """When the fault this instance recovered from began: the latest fault before its
        recovery that touched its host or a host holding its volumes' data."""
        inst = self.topology.instance(instance)
        touched = {inst.host} | {h for v in inst.volumes for h in self.topology.replica_hosts(v)}
        times = [at for at, f, _h in self.run.fault_log
                 if touched & set(f.targets()) and at <= until]
        return max(times) if times else None

    def _instances(self) -> list[InstanceReport]:
        out = []
        for inst in self.topology.instances:
            running = self.obs.running.get(inst.name, [])
            outcome = self.outcomes.get(inst.name)
            tally = self.tally.get(inst.name)
            rto = None
            if outcome is not None and outcome.verified_at is not None:
                fault_at = self._fault_time(inst.name, outcome.verified_at)
                rto = outcome.verified_at - fault_at if fault_at is not None else None
            state = outcome.state.value if outcome else ("running" if running else "lost")
            out.append(InstanceReport(
                name=inst.name, host_before=inst.host,
                host_after=",".join(running) if running else None, state=state,
                acked_writes=tally.acked if tally else 0,
                lost_writes=(tally.lost + tally.corrupt) if tally else 0,
                rto_s=rto, attach_mode=outcome.attach_mode if outcome else None,
                reason=outcome.reason if outcome else ""))
        return out

    def _timeline(self, results: list[CheckResult]) -> list[TimelineEvent]:
        events = [TimelineEvent(at=at, lane="fault", label=f.kind + " " + _target(f),
                                end=healed) for at, f, healed in self.run.fault_log]
        lanes = {"host-suspect": "detection", "host-suspected": "detection",
                 "host-down": "detection", "host-ok": "detection", "host-returned": "detection",
                 "fence-requested": "fencing", "fence-confirmed": "fencing",
                 "fence-assumed": "fencing", "fence-failed": "fencing"}
        for ev in self.run.events:
            if ev.kind in lanes:
                events.append(TimelineEvent(at=ev.time, lane=lanes[ev.kind], label=ev.message,
                                            ok=ev.kind != "fence-failed"))
        for result in self.run.recoveries:
            for phase in result.phases:
                lane = f"instance:{phase.instance}" if phase.instance else str(phase.phase.value)
                if phase.instance is None and lane not in ("detection", "fencing", "planning"):
                    lane = "planning"
                events.append(TimelineEvent(at=phase.start, end=max(phase.start, phase.end),
                                            lane=lane, label=phase.phase.value))
        for label, res in sorted(self.evidence.commands.items()):
            events.append(TimelineEvent(at=res.started, end=max(res.started, res.finished),
                                        lane="operator", label=label, ok=res.ok))
        for traced in self.events:
            notice = traced.event
            if isinstance(notice, DrbdNotice):
                events.append(TimelineEvent(
                    at=traced.at, lane=f"drbd:{notice.resource}", label=_drbd_label(notice),
                    ok=notice.kind not in ("split-brain", "io-error", "handshake-refused")))
        end = self.run.ended_at
        events += [TimelineEvent(at=end, lane="check", label=c.name, ok=c.ok) for c in results]
        return sorted(events, key=lambda e: (e.at, e.lane, e.label))

    def _drbd_events(self) -> dict[str, list[dict[str, Any]]]:
        """Each resource's notable DRBD events, as the report's JSON lists them."""
        out: dict[str, list[dict[str, Any]]] = {}
        for traced in self.events:
            notice = traced.event
            if isinstance(notice, DrbdNotice):
                out.setdefault(notice.resource, []).append(
                    {"t": traced.at, "event": notice.kind, **dict(notice.details)})
        return out

    def _phases(self) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for result in self.run.recoveries:
            for phase in result.phases:
                if phase.instance is None:
                    totals[phase.phase.value] += phase.duration
        return dict(totals)

    def _steps(self) -> dict[str, dict[str, float]]:
        steps: dict[str, dict[str, float]] = defaultdict(dict)
        for result in self.run.recoveries:
            for phase in result.phases:
                if phase.instance is not None:
                    steps[phase.instance][phase.phase.value] = phase.duration
        return dict(steps)


def _drbd_label(notice: DrbdNotice) -> str:
    """'split-brain policy=discard-secondary victim=bob', 'resync-started source=a ...'."""
    parts = [notice.kind]
    for key in ("policy", "survivor", "victim", "discarded_blocks", "source", "target", "node"):
        value = notice.get(key)
        if value not in (None, "", 0):
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _plain(result: CommandResult) -> dict[str, Any]:
    """A command result as the report's JSON shows it."""
    out: dict[str, Any] = json.loads(json.dumps(asdict(result)))
    return out


def _target(fault: Any) -> str:
    return ",".join(fault.targets())


def _expect_detection(result: CheckResult, expected: bool, what: str,
                      must_name: str | None = None) -> CheckResult:
    """For drills that demonstrate damage: pass when the check caught it (and named it)."""
    if not expected:
        return result
    if not result.ran:
        return result
    if result.ok:
        return CheckResult.failed(result.name, f"expected {what} to be detected, but the check "
                                  f"found none: {result.detail}")
    if must_name is not None and must_name.lower() not in result.detail.lower():
        return CheckResult.failed(result.name, f"the check failed without naming "
                                  f"{must_name!r}: {result.detail}")
    return CheckResult.passed(result.name, f"detected as expected: {result.detail}",
                              **result.data)


def judge(run: DrillRun) -> Report:
    return Judge(run).report()
