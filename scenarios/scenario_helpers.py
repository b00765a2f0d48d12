"""Small helpers the scenario tests share: where the drills live, and assertions whose
messages say what failed and how to reproduce it (seed and command), so a red scenario
in CI is readable without opening the Allure report."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from stackdrill.checks import CheckResult
from stackdrill.report.differential import compare
from stackdrill.report.differential_html import render_differential_html
from stackdrill.report.model import InstanceReport, Report

ROOT = Path(__file__).resolve().parents[1]
DRILLS = ROOT / "lab" / "drills"
DIFFERENTIAL = ROOT / "reports" / "differential"


def drill(name: str) -> Path:
    """The shipped drill file `lab/drills/<name>.yaml`."""
    path = DRILLS / f"{name}.yaml"
    assert path.is_file(), f"no drill {path}"
    return path


def explain(report: Report) -> str:
    """Failed checks, one a line, plus the command that replays this exact run."""
    lines = [f"drill {report.drill} on {report.backend} (seed {report.seed}) failed:"]
    lines += [f"  {c.name}: {'NEVER RAN ' if not c.ran else ''}{c.detail}"
              for c in report.failed_checks] or ["  (no check ran)"]
    lines.append(f"  reproduce: stackdrill run lab/drills/{report.drill}.yaml "
                 f"--backend {report.backend} --seed {report.seed}")
    return "\n".join(lines)


def assert_passed(report: Report) -> None:
    assert report.passed, explain(report)


def check(report: Report, name: str) -> CheckResult:
    """The check called `name` (as in the report's table, e.g. 'drbd[r0]')."""
    found = [c for c in report.checks if c.name == name]
    assert found, f"no check {name!r} in {[c.name for c in report.checks]}"
    return found[0]


def command(report: Report, label: str) -> dict[str, Any]:
    """The result of the drill's operator command `label`: ok, detail, started, finished."""
    commands = report.extra["commands"]
    assert label in commands, f"no command {label!r} in {sorted(commands)}"
    result: dict[str, Any] = commands[label]
    return result


def probe(report: Report, label: str) -> dict[str, Any]:
    """What the overlay probe `label` found: src, dst, reachable, full_size_ok, path_mtu,
    arp_mac, expected_mac."""
    found = command(report, label)["probe"]
    assert found is not None, f"probe {label!r} could not run: {command(report, label)}"
    return dict(found)


def instance(report: Report, name: str) -> InstanceReport:
    found = [i for i in report.instances if i.name == name]
    assert found, f"no instance {name!r} in the report"
    return found[0]


def from_host(report: Report, host: str) -> list[InstanceReport]:
    """The instances that ran on `host` when the drill started."""
    return [i for i in report.instances if i.host_before == host]


def drbd_after(report: Report, resource: str, host: str) -> tuple[str, str, str]:
    """(role, disk, connection) of `resource` on `host` at the end, as drbdadm shows it."""
    fields = report.state_after["drbd"][resource][host]
    return fields["role"], fields["disk"], fields["connection"]


def assert_sim_agrees(report: Report, run_drill: Callable[..., Report]) -> None:
    """The differential check: on a real backend, the same drill on the simulator must
    reach the same verdict and the same DRBD/LVM state (every disagreement is a bug in
    one of them). Writes reports/differential/<drill>.html with both side by side.
    Nothing to compare when the drill ran on the simulator itself."""
    if report.backend == "sim":
        return
    sim = run_drill(drill(report.drill), seed=report.seed, backend="sim")
    diff = compare(sim, report)
    DIFFERENTIAL.mkdir(parents=True, exist_ok=True)
    page = DIFFERENTIAL / f"{report.drill}.html"
    page.write_text(render_differential_html(diff))
    assert diff.agrees, (f"sim and {report.backend} disagree on {report.drill} ({page}):\n"
                         + "\n".join(f"  {r.section}: {r.what}: {r.left} vs {r.right}"
                                      for r in diff.disagreements))
