"""A deliberately broken recovery engine must make real drills fail.

Each test runs a real drill on the simulator twice: as shipped (it passes, so the
checks are not failing for some other reason) and with one recovery step sabotaged
through monkeypatch (the drill fails, and the failing check names the damage). The
checks judge the lab's ground truth (power and hypervisor events in the trace, the
records on the replicas), never the engine's own claims, which is why a lying engine
is caught.
"""

from __future__ import annotations

from collections.abc import Generator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from stackdrill import checks
from stackdrill.drill import load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.runner import DrillRun, execute
from stackdrill.recovery import engine, fence, tasks
from stackdrill.report.model import Report

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGY = ROOT / "lab" / "topologies" / "nova-drbd.yaml"

# cmp1 freezes (a hung kernel: no heartbeats, power controller says "hung") and thaws at
# 200 s with its guests still defined: only a real power-off makes evacuating it safe.
HUNG_HOST = f"""
name: hung-host
topology: {TOPOLOGY}
duration_s: 400
workload: {{write_interval_s: 2}}
schedule:
  - {{at: 0, recover: {{parallel: 4{{assume}}}}}}
  - {{at: 60, id: hang, inject: {{kind: host_hang, host: cmp1}}}}
  - {{at: 200, heal: hang}}
expect:
  - {{check: exactly_once}}
  - {{check: fencing_order}}
  - {{check: acked_writes, max_lost: 0}}
  - {{check: recovered}}
"""


def run(path: Path, keep: bool = False) -> tuple[Report, DrillRun]:
    finished = execute(load_drill(path), backend="sim", keep=keep)
    return judge(finished), finished


def hung_host_drill(tmp_path: Path, assume_fenced: bool = False) -> Path:
    path = tmp_path / "hung-host.yaml"
    text = HUNG_HOST.replace("{assume}", ", assume_fenced: true" if assume_fenced else "")
    path.write_text(text)
    return path


def failed(report: Report) -> dict[str, str]:
    return {c.name: c.detail for c in report.failed_checks}


def test_hung_host_drill_passes_with_the_real_engine(tmp_path: Path) -> None:
    """The control: fencing powers cmp1 off before its guests start elsewhere."""
    report, _ = run(hung_host_drill(tmp_path))
    assert report.passed, failed(report)


def test_skipping_the_power_off_fails_fencing_order_and_acked_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage: fencing claims success without cutting power, and the engine's own
    power re-check before starting a guest is gone. cmp1's guests are started elsewhere
    while cmp1 is merely hung; when it thaws its old guests write again over the volumes
    (two writers). fencing_order names each instance started before cmp1 was off, and
    acked_writes finds acknowledged records that the stale writers clobbered."""

    def begin(power: Any, host: str, now: float) -> fence.FenceAttempt:
        done: Future[None] = Future()
        done.set_result(None)
        return fence.FenceAttempt(host, now, done)  # no power_off() call

    def conclude(power: Any, attempt: fence.FenceAttempt, now: float,
                 timeout_s: float) -> fence.FenceOutcome:
        return fence.FenceOutcome(attempt.host, True, "power controller reports off (a lie)")

    monkeypatch.setattr(fence, "begin", begin)
    monkeypatch.setattr(fence, "conclude", conclude)
    monkeypatch.setattr(engine.RecoveryEngine, "start_clearance", lambda self, ctx: None)
    report, _ = run(hung_host_drill(tmp_path))
    problems = failed(report)
    assert not report.passed
    assert "fencing_order" in problems, problems
    moved = [i.name for i in report.instances if i.host_before == "cmp1"]
    for name in moved:
        assert f"{name} started on" in problems["fencing_order"], problems["fencing_order"]
    assert "before cmp1 was confirmed fenced" in problems["fencing_order"]
    assert "acked_writes" in problems and "acked writes lost" in problems["acked_writes"]


def test_assume_fenced_on_a_hung_host_is_caught_by_fencing_order(tmp_path: Path) -> None:
    """The operator's --assume-fenced on a host that is only hung: the engine starts its
    guests elsewhere without a power-off; the trace shows cmp1 never went off."""
    report, _ = run(hung_host_drill(tmp_path, assume_fenced=True))
    problems = failed(report)
    assert "fencing_order" in problems, report.checks
    assert "cmp1" in problems["fencing_order"]


def test_unprepared_storage_fails_recovered_and_exactly_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage: PrepareStorage hands the guest its volume's local device path without
    promoting the surviving DRBD replica (or logging in to iSCSI) — the stale connection
    info of the dead host. On the mirrored pair of scenario 4 the guests cannot open
    their volumes, so `recovered` and `exactly_once` fail and name both instances."""

    def unprepared(self: tasks.PrepareStorage, ctx: tasks.FlowContext) -> Generator[Any]:
        topo = ctx.rt.topology  # type: ignore[attr-defined]
        paths = {v: {"path": f"/dev/{topo.volume(v).vg}/{v}", "mode": "local",
                     "served_by": ctx.target} for v in ctx.volumes}
        with ctx.commit(self.step, began=ctx.rt.now(), paths=paths):
            pass
        ctx.values["paths"] = paths
        yield from ()

    shipped = ROOT / "lab" / "drills" / "third-node.yaml"
    report, _ = run(shipped)
    assert report.passed, failed(report)
    monkeypatch.setattr(tasks.PrepareStorage, "execute", unprepared)
    report, _ = run(shipped)
    problems = failed(report)
    assert "recovered" in problems and "exactly_once" in problems, problems
    for name in ("inst-a", "inst-b"):
        assert name in problems["recovered"] and name in problems["exactly_once"]


def forget_last_volume(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sabotage: PrepareStorage drops each instance's last volume, so the guest starts
    on its new host without it (the seed's 'instance back, volume gone')."""
    original = tasks.PrepareStorage.execute

    def forgetful(self: tasks.PrepareStorage, ctx: tasks.FlowContext) -> Generator[Any]:
        ctx.volumes = ctx.volumes[:-1]
        return (yield from original(self, ctx))

    monkeypatch.setattr(tasks.PrepareStorage, "execute", forgetful)


def progress_after_recovery() -> checks.CheckResult:
    """acked_writes over the host-failure drill, demanding progress after the engine's
    recovery window (the fault at 60 s plus two minutes), whatever the engine believes."""
    _, finished = run(ROOT / "lab" / "drills" / "nova-host-failure.yaml")
    evidence = finished.final
    return checks.acked_writes(list(evidence.history), evidence.stored, resumed_after=180.0)


def test_forgotten_volume_is_caught_by_the_acked_writes_progress_check(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The operation-history checker, asked whether every (instance, volume) made progress
    after the recovery, passes on the real engine and names each evacuated instance
    whose volume the sabotaged engine forgot."""
    control = progress_after_recovery()
    assert control.ok, control.detail
    forget_last_volume(monkeypatch)
    result = progress_after_recovery()
    assert not result.ok
    assert sorted(s.split("/")[0] for s in result.data["stalled"]) == ["app1", "db1", "web1"]


def test_forgotten_volume_fails_the_shipped_host_failure_drill(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A guest started without its volume does not pass the verify step (its application
    cannot write), so the drill's `recovered` expectation names the instances."""
    forget_last_volume(monkeypatch)
    report, _ = run(ROOT / "lab" / "drills" / "nova-host-failure.yaml")
    assert not report.passed
    problems = failed(report)
    assert "recovered" in problems
    for name in ("app1", "db1", "web1"):
        assert name in problems["recovered"]
