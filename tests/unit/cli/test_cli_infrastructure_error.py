"""A lab that could not be brought up, driven or observed is an infrastructure error: one
line on stderr, exit 3, a report in the `error` state with the reason and no checks —
never a FAIL verdict, never a traceback; `compare` reads such a report as no verdict.

The two backends here are the simulator with one thing broken as it breaks on real
labs: a guest that never comes up, a power controller that stops answering mid-drill
(the sim's own scheduler turns that into ScheduledActionFailed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.api import Lab, LabOptions
from stackdrill.backends import REGISTRY
from stackdrill.backends.sim import SimBackend
from stackdrill.backends.sim.lab import SimLab
from stackdrill.cli import cli
from stackdrill.errors import LabNotReadyError
from stackdrill.faults import Fault
from stackdrill.topology import Topology

ROOT = Path(__file__).resolve().parents[3]
DRILL = str(ROOT / "lab" / "drills" / "quorum-two-node.yaml")


class NeverReadyBackend(SimBackend):
    """A lab whose guests never come up."""

    name = "never-ready"

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        raise LabNotReadyError("guest alice: agent silent after 120 s")


class DeadBmcLab(SimLab):
    """The simulator, except that the power controller refuses every fault."""

    def inject(self, fault: Fault) -> None:
        raise ConnectionRefusedError(f"BMC of {fault.targets()[0]}: connection refused")


class DeadBmcBackend(SimBackend):
    name = "dead-bmc"

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        return DeadBmcLab(topology, lab_name=lab_name, seed=seed,
                          options=options or LabOptions())


@pytest.fixture(autouse=True)
def broken_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "never-ready", f"{__name__}:NeverReadyBackend")
    monkeypatch.setitem(REGISTRY, "dead-bmc", f"{__name__}:DeadBmcBackend")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(("backend", "reason"), [
    ("never-ready", "lab not ready: guest alice: agent silent after 120 s"),
    ("dead-bmc", "scheduled action 'schedule[0] inject host_crash host=bob"),
])
def test_an_infrastructure_error_exits_3_with_an_error_report(tmp_path: Path, backend: str,
                                                              reason: str) -> None:
    report = tmp_path / "r.json"
    code, out, err = invoke("run", DRILL, "--backend", backend, "--report", str(report), "-q")
    assert code == 3, (out, err)
    assert err.startswith(f"stackdrill: error: {reason}"), err
    assert "Traceback" not in err and "FAIL" not in out + err
    data = json.loads(report.read_text())
    assert data["verdict"] == "error" and data["error"] == err.splitlines()[0].removeprefix(
        "stackdrill: error: ")
    assert data["checks"] == [] and data["backend"] == backend and data["seed"] == 1


def test_the_html_report_of_an_error_shows_the_state_and_reason_only(tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    code, _out, _err = invoke("run", DRILL, "--backend", "never-ready", "--report",
                              str(report), "-q")
    assert code == 3
    page = report.read_text()
    assert "ERROR — quorum-two-node" in page and "agent silent after 120 s" in page
    assert "Checks" not in page and "PASS" not in page and "FAIL" not in page


def test_compare_reads_an_error_report_as_no_verdict(tmp_path: Path) -> None:
    error, good = tmp_path / "error.json", tmp_path / "good.json"
    assert invoke("run", DRILL, "--backend", "never-ready", "--report", str(error))[0] == 3
    assert invoke("run", DRILL, "--report", str(good), "-q")[0] == 0
    code, out, err = invoke("compare", str(good), str(error))
    assert code == 3, (out, err)
    assert "infrastructure error, nothing to compare" in err and "DISAGREE" not in out
    code, _out, err = invoke("compare", DRILL, "--backends", "sim,never-ready")
    assert code == 3 and "lab not ready" in err and "Traceback" not in err
