"""The command line as a person uses it: exit codes, one-line errors, reports, named labs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli

ROOT = Path(__file__).resolve().parents[3]
DRILLS = ROOT / "lab" / "drills"
BAD = ROOT / "fixtures" / "bad"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_validate_accepts_shipped_files() -> None:
    files = sorted(str(p) for p in (ROOT / "lab").glob("*/*.yaml"))  # drills, topologies
    code, out, _err = invoke("validate", *files)
    assert code == 0, out
    assert out.count("ok ") == len(files)


@pytest.mark.parametrize("name", ["empty.yaml", "syntax.yaml", "list.yaml", "wrong-types.yaml",
                                  "unknown-host.yaml", "bad-drill.yaml", "duplicate-key.yaml"])
def test_validate_refuses_bad_input_without_traceback(name: str) -> None:
    code, _out, err = invoke("validate", str(BAD / name))
    assert code == 2
    assert err.startswith(str(BAD / name) + ":")
    assert "Traceback" not in err


def test_run_writes_a_json_report_and_exits_zero(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code, out, _err = invoke("run", str(DRILLS / "quorum-two-node.yaml"), "--report",
                             str(report), "-q")
    assert code == 0, out
    data = json.loads(report.read_text())
    for key in ("drill", "backend", "seed", "verdict", "trace_sha256", "instances", "checks",
                "faults", "timeline"):
        assert key in data
    assert data["verdict"] == "pass" and data["backend"] == "sim"
    assert set(data["instances"][0]) >= {"name", "host_before", "host_after", "state",
                                         "acked_writes", "lost_writes", "rto_s"}


def test_same_seed_same_trace_other_seed_other_trace(tmp_path: Path) -> None:
    shas = []
    for seed in ("5", "5", "6"):
        report = tmp_path / f"r{len(shas)}.json"
        code, out, _ = invoke("run", str(DRILLS / "nova-host-failure.yaml"), "--seed", seed,
                              "--report", str(report), "-q")
        assert code == 0, out
        shas.append(json.loads(report.read_text())["trace_sha256"])
    assert shas[0] == shas[1]
    assert shas[0] != shas[2]


def test_failed_expectation_exits_one(tmp_path: Path) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text(f"name: wrong-expectation\ntopology: {DRILLS.parent / 'topologies'}"
                     "/two-node-clvm.yaml\nduration_s: 60\nschedule:\n"
                     "  - {at: 10, inject: {kind: host_crash, host: bob, power_back: false}}\n"
                     "expect:\n  - {check: exactly_once}\n")
    code, out, _err = invoke("run", str(drill))
    assert code == 1
    assert "not running anywhere: vm2" in out and "FAIL" in out


def test_unknown_backend_is_refused() -> None:

    code, _out, err = invoke("run", str(DRILLS / "disk-failure.yaml"), "--backend", "nope")
    assert code == 2
    assert "unknown backend 'nope'" in err


def test_every_command_explains_itself_with_an_example() -> None:
    for command in ("run", "validate", "schema", "backends", "up", "status", "inject", "heal",
                    "wait", "recover", "verify", "down"):
        code, out, _ = invoke(command, "--help")
        assert code == 0
        assert "Example" in out, command


def test_schema_is_json_schema() -> None:
    code, out, _ = invoke("schema", "topology")
    assert code == 0
    assert "hosts" in json.loads(out)["properties"]


def test_named_lab_lifecycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    topo = str(ROOT / "lab" / "topologies" / "nova-drbd.yaml")
    assert invoke("up", topo, "--lab", "t1")[0] == 0
    code, _out, err = invoke("up", topo, "--lab", "t1")
    assert code == 2 and "already exists" in err
    code, out, _ = invoke("inject", "host_crash", "host=cmp1", "power_back=false", "--lab", "t1")
    assert code == 0 and out.startswith("f1:")
    assert invoke("wait", "60", "--lab", "t1")[0] == 0
    code, out, _ = invoke("status", "--lab", "t1")
    assert "cmp1" in out and "off" in out and "f1: host_crash" in out
    code, out, _ = invoke("verify", "--lab", "t1")
    assert code == 1 and "not running anywhere" in out  # nothing recovered yet
    code, out, _ = invoke("recover", "--lab", "t1")
    assert code == 0, out
    code, out, _ = invoke("verify", "--lab", "t1")
    assert code == 0, out
    assert invoke("down", "--lab", "t1")[0] == 0
    code, _out, err = invoke("status", "--lab", "t1")
    assert code == 2 and "no lab named 't1'" in err


def test_inject_with_a_bad_parameter_is_a_clear_error(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    code, _out, err = invoke("inject", "packet_loss", "host=cmp1", "network=mgmt",
                             "probability=2")
    assert code == 2
    assert "probability" in err and "Traceback" not in err
