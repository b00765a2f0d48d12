"""The judge reads only the evidence a run collected; what it says when evidence is missing
is what a user reads in CI, so it must say why."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from stackdrill.api import CommandResult
from stackdrill.drill import load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.runner import execute

DRILLS = Path(__file__).resolve().parents[3] / "lab" / "drills"


def test_a_probe_the_backend_could_not_run_fails_with_its_reason() -> None:
    run = execute(load_drill(DRILLS / "overlay.yaml"))
    commands = dict(run.final.commands)
    commands["before-2"] = CommandResult(ok=False, detail="GuestCommandError: cmp1: agent gone")
    run.evidence = dataclasses.replace(run.final, commands=commands)
    overlay = next(c for c in judge(run).checks if c.name == "overlay")
    assert (overlay.ok, overlay.ran) == (False, False)
    assert "probe 'before-2' could not run: GuestCommandError: cmp1: agent gone" \
        in overlay.detail


def test_a_probe_missing_from_the_evidence_never_ran() -> None:
    run = execute(load_drill(DRILLS / "overlay.yaml"))
    commands = {k: v for k, v in run.final.commands.items() if k != "after"}
    run.evidence = dataclasses.replace(run.final, commands=commands)
    overlay = next(c for c in judge(run).checks if c.name == "overlay")
    assert (overlay.ok, overlay.ran) == (False, False)
    assert "probe 'after' never ran" in overlay.detail


HELD_LVCREATE = """\
name: held-lvcreate
topology: {topology}
duration_s: 120
schedule:
  - {{at: 20, inject: {{kind: host_crash, host: bob, power_back: false}}}}
  - {{at: 40, run: {{tool: lvm, host: alice, op: lvcreate, vg: vg-shared, lv: new, extents: 8}}}}
expect:
  - {{check: exactly_once}}
{extra}"""


def _held_lvcreate(tmp_path: Path, extra: str = "") -> list[tuple[str, bool, str]]:
    """bob's power cut leaves the DLM waiting for a manual fence acknowledgement; alice's
    lvcreate waits for its VG lock to the drill's end."""
    path = tmp_path / "held.yaml"
    topology = DRILLS.parent / "topologies" / "two-node-clvm.yaml"
    path.write_text(HELD_LVCREATE.format(topology=topology, extra=extra))
    report = judge(execute(load_drill(path)))
    return [(c.name, c.ok, c.detail) for c in report.checks]


def test_a_command_that_never_finished_fails_the_drill(tmp_path: Path) -> None:
    checks = _held_lvcreate(tmp_path)
    assert ("commands_finished", False,
            "schedule[1] (lvm lvcreate on alice) never finished") in checks


def test_a_command_the_drill_expects_still_waiting_passes(tmp_path: Path) -> None:
    checks = _held_lvcreate(tmp_path, "  - {check: commands, pending: [1]}\n")
    assert ("commands", True, "0 succeeded, 0 refused, 1 still waiting as expected") in checks
    assert ("commands_finished", True, "0 command(s) finished, 1 still waiting as expected") \
        in checks


def test_an_expectation_at_a_checkpoint_that_never_ran_fails_as_not_run() -> None:
    run = execute(load_drill(DRILLS / "switch-primaries.yaml"))
    run.checkpoints.pop("on-cmp2")
    checks = {c.name: c for c in judge(run).checks}
    missed = checks["drbd[r0]@on-cmp2"]
    assert (missed.ok, missed.ran) == (False, False)
    assert missed.detail == "never ran: the observe step 'on-cmp2' never ran"
    assert checks["drbd[r0]@back-on-cmp1"].ok


def test_the_observe_steps_are_on_the_reports_timeline() -> None:
    report = judge(execute(load_drill(DRILLS / "switch-primaries.yaml")))
    seen = [(e.at, e.label) for e in report.timeline if e.label.startswith("observe ")]
    assert seen == [(10.0, "observe start"), (30.0, "observe on-cmp2"),
                    (60.0, "observe back-on-cmp1")]
