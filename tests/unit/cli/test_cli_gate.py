"""`stackdrill gate` from the command line: one verdict per drill on the terminal and in
the report directory (gate.html, gate.json, each drill's page and a YAML that `stackdrill
run` reruns), exit codes 0 / 1 / 2 / 3 as `stackdrill run` uses them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.api import Lab, LabOptions
from stackdrill.backends import REGISTRY
from stackdrill.backends.sim import SimBackend
from stackdrill.cli import cli
from stackdrill.errors import LabNotReadyError
from stackdrill.gate.builders import STANDARD
from stackdrill.topology import Topology

ROOT = Path(__file__).resolve().parents[3]
NAMES = [s.name for s in STANDARD]


class NeverReadyBackend(SimBackend):
    """The simulator, except that no lab ever comes up (a guest that never boots)."""

    name = "never-ready"

    def create(self, topology: Topology, *, lab_name: str, seed: int,
               options: LabOptions | None = None) -> Lab:
        raise LabNotReadyError("guest cmp1: agent silent after 120 s")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_a_passing_gate_writes_one_verdict_per_drill(tmp_path: Path) -> None:
    out_dir = tmp_path / "gate-report"
    code, out, err = invoke("gate", str(ROOT / "lab" / "topologies" / "drbd-pair.yaml"),
                            "--report", str(out_dir), "--seed", "4")
    assert code == 0, (out, err)
    assert "PASS gate drbd-pair backend=sim seed=4" in out
    data = json.loads((out_dir / "gate.json").read_text())
    assert [r["name"] for r in data["results"]] == NAMES
    assert {r["verdict"] for r in data["results"]} == {"PASS"}
    assert data["topology"] == "drbd-pair" and len(data["topology_sha256"]) == 64
    assert data["backend"] == "sim" and data["seed"] == 4 and data["date"]
    page = (out_dir / "gate.html").read_text()
    assert "PASS — acceptance gate for drbd-pair" in page
    for name in NAMES:
        assert (out_dir / "drills" / f"{name}.html").read_text().count(f"PASS — {name}") == 1
        assert f'href="drills/{name}.html"' in page
    # a drill of the report reruns as it ran: the same trace, byte for byte
    rerun = tmp_path / "rerun.json"
    code, out, err = invoke("run", str(out_dir / "drills" / "host-loss.yaml"), "-q",
                            "--report", str(rerun))
    assert code == 0, (out, err)
    assert json.loads(rerun.read_text())["trace_sha256"] == data["results"][0]["report"][
        "trace_sha256"]


def test_a_failing_gate_exits_1_and_names_the_drill(tmp_path: Path) -> None:
    code, out, err = invoke("gate", "two-node-clvm", "-q", "--only", "split-brain,host-loss")
    assert code == 1, (out, err)
    assert out == ""
    assert err.startswith("FAIL gate two-node-clvm backend=sim seed=1") and "split-brain" in err


def test_json_on_stdout_progress_elsewhere() -> None:
    code, out, err = invoke("gate", "nova-nbd", "--only", "host-loss,split-brain", "--json")
    assert code == 0, err
    data = json.loads(out)
    assert {r["name"]: r["verdict"] for r in data["results"]} == {
        "host-loss": "PASS", "split-brain": "NOT APPLICABLE"}
    assert "[1/2] Host loss: cmp1" in err


@pytest.mark.parametrize(("args", "message"), [
    (("gate", "nova-drbd", "--only", "host-loss,nope"),
     "stackdrill: error: --only: nope: no such gate drill (known: host-loss, "),
    (("gate", "no-such-topology"),
     "stackdrill: error: no-such-topology: no such file and no shipped topology"),
    (("gate", "nova-drbd", "--backend", "netns"),
     "stackdrill: error: the gate needs what backend netns cannot realise:"),
])
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 2, (out, err)
    assert err.startswith(message) and "Traceback" not in err


def test_an_infrastructure_error_exits_3(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setitem(REGISTRY, "never-ready",
                        f"{__name__}:NeverReadyBackend")
    code, out, err = invoke("gate", "drbd-pair", "--backend", "never-ready", "--only",
                            "host-loss", "--report", str(tmp_path / "r"))
    assert code == 3, (out, err)
    assert "ERROR gate drbd-pair" in out and "FAIL" not in out
    data = json.loads((tmp_path / "r" / "gate.json").read_text())
    assert data["results"][0]["verdict"] == "ERROR"
    assert "lab not ready" in (tmp_path / "r" / "gate.html").read_text()
