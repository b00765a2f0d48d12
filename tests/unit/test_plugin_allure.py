"""What Allure shows of a scenario run: parameters, labels, categories, the environment,
read from the files `pytest --alluredir` writes.

The Allure run is a subprocess: allure-commons keeps one plugin manager per process, so an
Allure run around this test (scripts/test.sh records one) would otherwise receive the
inner results and the inner run the outer ones.
"""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
DRILLS = ROOT / "lab" / "drills"
TOPOLOGY = ROOT / "lab" / "topologies" / "two-node-clvm.yaml"
SHA256 = re.compile(r"^[0-9a-f]{64}$")

# quorum-two-node with an expectation the recovery cannot meet: the survivor is quorate
WRONG_QUORUM = f"""
name: quorum-wrong
topology: {TOPOLOGY}
duration_s: 120
workload: {{write_interval_s: 1}}
schedule:
  - {{at: 30, id: bob-dies, inject: {{kind: host_crash, host: bob, power_back: false}}}}
  - {{at: 60, run: {{tool: cluster, op: fence_ack_manual, cluster: drbd-pair, victim: bob}}}}
expect:
  - {{check: quorum, cluster: drbd-pair, quorate: {{alice: false}}}}
"""

SCENARIOS = f"""
import pytest
from stackdrill.errors import LabNotReadyError

@pytest.mark.topology({str(TOPOLOGY)!r})
def test_on_a_lab(lab):
    pass

def test_quorum(run_drill):
    report = run_drill({str(DRILLS / "quorum-two-node.yaml")!r})
    assert report.passed
    print("TRACE", report.trace_sha256)

def test_wrong_quorum(run_drill):
    report = run_drill("quorum-wrong.yaml")
    assert report.passed, [c.detail for c in report.failed_checks]

def test_split_brain(run_drill):
    assert run_drill({str(DRILLS / "split-brain.yaml")!r}).passed

def test_lab_never_booted(run_drill):
    raise LabNotReadyError("cmp1 booting (guest agent silent): no progress for 90 s")
"""


@dataclass(frozen=True)
class AllureRun:
    """What one `pytest --alluredir` run left: results by test name and the directory."""

    results: dict[str, dict[str, Any]]
    directory: Path
    output: str

    def params(self, test: str) -> dict[str, dict[str, Any]]:
        return {p["name"]: p for p in self.results[test].get("parameters", [])}

    def labels(self, test: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for label in self.results[test]["labels"]:
            found.setdefault(label["name"], []).append(label["value"])
        return found

    def categories(self, test: str) -> list[str]:
        """The categories Allure files the result under, by Allure's own rule (status in
        matchedStatuses, message and trace matching their regexes in full; a failed
        result no category takes is a "Product defect", a broken one a "Test defect")."""
        result = self.results[test]
        details = result.get("statusDetails", {})
        rules = json.loads((self.directory / "categories.json").read_text())
        names = [c["name"] for c in rules if _matches(c, result["status"], details)]
        defaults = {"failed": "Product defects", "broken": "Test defects"}
        return names or ([defaults[result["status"]]] if result["status"] in defaults else [])


def _matches(category: dict[str, Any], status: str, details: dict[str, str]) -> bool:
    def full(regex: str | None, text: str | None) -> bool:
        return regex is None or (text is not None and re.fullmatch(regex, text) is not None)

    return (status in category.get("matchedStatuses", [status])
            and full(category.get("messageRegex"), details.get("message"))
            and full(category.get("traceRegex"), details.get("trace")))


def _steps(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step, nested ones too."""
    return [s for step in steps for s in [step, *_steps(step.get("steps", []))]]


@pytest.fixture(scope="module")
def allure_run(tmp_path_factory: pytest.TempPathFactory) -> AllureRun:
    """pytest --alluredir on the five scenarios, once for the tests below: a subprocess, as
    pytester's runpytest_subprocess runs it (see the module doc; pytester itself is
    function-scoped)."""
    where = tmp_path_factory.mktemp("allure-scenarios")
    (where / "quorum-wrong.yaml").write_text(WRONG_QUORUM)
    (where / "test_scenarios.py").write_text(SCENARIOS)
    out = where / "allure"
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-s",
                           f"--alluredir={out}", "test_scenarios.py"], cwd=where,
                          capture_output=True, text=True, timeout=600, check=False)
    results = {}
    for path in out.glob("*-result.json"):
        found = json.loads(path.read_text())
        results[found["name"]] = found
    assert len(results) == 5, proc.stdout + proc.stderr
    return AllureRun(results, out, proc.stdout)


def test_each_drill_test_carries_backend_seed_and_trace(allure_run: AllureRun) -> None:
    """Backend and seed as parameters (they tell cases apart in Allure's history), the
    trace hash as a parameter left out of the history id, and labels to filter by."""
    params = allure_run.params("test_quorum")
    assert params["backend"]["value"] == "'sim'" and params["seed"]["value"] == "1"
    trace = re.search(r"TRACE ([0-9a-f]{64})", allure_run.output)
    assert trace is not None, allure_run.output
    assert params["trace"]["value"] == f"'{trace[1]}'"
    assert params["trace"]["excluded"] is True and "excluded" not in params["seed"]
    labels = allure_run.labels("test_quorum")
    assert labels["backend"] == ["sim"] and "sim" in labels["tag"]
    assert labels["drill"] == ["quorum-two-node"]
    assert labels["trace_sha256"] == [trace[1]]


def test_a_test_on_a_lab_fixture_carries_its_backend_and_seed(allure_run: AllureRun) -> None:
    params = allure_run.params("test_on_a_lab")
    assert {n: p["value"] for n, p in params.items()} == {"backend": "'sim'", "seed": "1"}
    assert allure_run.labels("test_on_a_lab")["backend"] == ["sim"]


def test_infrastructure_error_check_failure_and_expected_damage_are_apart(
        allure_run: AllureRun) -> None:
    """Allure's Categories tab, by categories.json: a lab that was not ready, a check
    that failed, and a split brain the drill asked for each in its own category."""
    assert allure_run.results["test_lab_never_booted"]["status"] == "broken"
    assert allure_run.categories("test_lab_never_booted") == [
        "Infrastructure errors (lab not ready: no verdict about the recovery)"]
    assert allure_run.results["test_wrong_quorum"]["status"] == "failed"
    assert allure_run.categories("test_wrong_quorum") == [
        "Failed checks (the recovery did not do its job)"]
    assert allure_run.results["test_split_brain"]["status"] == "passed"
    assert allure_run.categories("test_split_brain") == [
        "Expected damage (the drill asks for it and every check held)"]
    assert allure_run.categories("test_quorum") == []


def test_an_expected_split_brain_is_a_marked_step_not_a_red_one(
        allure_run: AllureRun) -> None:
    """split-brain.yaml expects the split brain: no step of the passed test is failed,
    and the DRBD step says the damage was expected."""
    result = allure_run.results["test_split_brain"]
    steps = _steps(result["steps"])
    assert [s["name"] for s in steps if s["status"] != "passed"] == []
    expected = [s["name"] for s in steps if s["name"].startswith("expected damage: ")]
    assert expected and "split-brain" in expected[0], [s["name"] for s in steps]
    assert "split brain on DRBD r0" in expected[0]
    assert allure_run.labels("test_split_brain")["expected_damage"] == [
        "split brain on DRBD r0"]
    assert result["statusDetails"]["message"].startswith(
        "expected damage: split brain on DRBD r0")
    # a failed check still shows as a failed step
    failed = _steps(allure_run.results["test_wrong_quorum"]["steps"])
    assert any(s["status"] == "failed" and "FAILED" in s["name"] for s in failed)


def test_the_environment_names_stackdrill_commit_backends_python_and_machine(
        allure_run: AllureRun) -> None:
    from stackdrill import __version__

    lines = (allure_run.directory / "environment.properties").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines)
    assert env["stackdrill"] == __version__
    assert env["backends"] == "sim" and env["lab_backend"] == "sim"
    assert env["python"] == f"{platform.python_implementation()} {platform.python_version()}"
    assert platform.machine() in env["machine"]
    assert env["commit"] == "unknown"  # the scenarios ran outside any git checkout
