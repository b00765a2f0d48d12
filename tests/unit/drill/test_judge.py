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
