"""`stackdrill list drills|faults|backends|labs` and `status --json`: the same typed rows
for a person (a table) and for a script (one JSON array or object)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill import shipped
from stackdrill.backends import REGISTRY
from stackdrill.cli import cli
from stackdrill.faults import FAULT_KINDS

ROOT = Path(__file__).resolve().parents[3]


def invoke(*args: str) -> tuple[int, str, str]:
    # as piped, whole lines (pytest-xdist's workers export COLUMNS=80)
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": None})
    return result.exit_code, result.stdout, result.stderr


def test_list_drills_json_names_every_shipped_drill_and_where_it_runs() -> None:
    code, out, err = invoke("list", "drills", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == {d.name for d in shipped.drills()}
    nova = rows["nova-host-failure"]
    assert nova["topology"] == "nova-drbd" and nova["faults"] == ["host_crash"]
    assert "sim" in nova["runs_on"]
    assert Path(nova["path"]) == shipped.DRILLS / "nova-host-failure.yaml"
    # derived from the backends' declared limits: namespaces have no DRBD
    assert "netns" not in rows["split-brain"]["runs_on"]


def test_list_drills_table_shows_the_names_to_run() -> None:
    code, out, _err = invoke("list", "drills")
    assert code == 0
    assert "nova-host-failure" in out and "split-brain-stonith" in out


def test_list_faults_json_has_every_kind_with_its_parameters() -> None:
    code, out, _err = invoke("list", "faults", "--json")
    assert code == 0
    rows = {r["kind"]: r for r in json.loads(out)}
    assert list(rows) == list(FAULT_KINDS)
    assert rows["host_crash"]["parameters"] == ["host", "power_back?"]
    assert rows["corrupt_blocks"]["healable"] is False
    assert rows["host_crash"]["healable"] is True
    assert "sim" in rows["host_crash"]["backends"]


def test_list_backends_json_says_what_each_needs_and_can_do() -> None:
    code, out, _err = invoke("list", "backends", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == set(REGISTRY)
    assert rows["sim"]["available"] is True and rows["sim"]["in_process"] is True
    assert "host_crash" in rows["sim"]["faults"] and "drbd" in rows["sim"]["features"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    return tmp_path


def test_status_json_is_one_object_with_hosts_drbd_and_faults(home: Path) -> None:
    topology = str(ROOT / "lab" / "topologies" / "drbd-pair.yaml")
    assert invoke("up", topology, "--lab", "js")[0] == 0
    assert invoke("inject", "host_crash", "host=cmp1", "--lab", "js")[0] == 0
    code, out, err = invoke("status", "--lab", "js", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["lab"] == "js" and shown["backend"] == "sim"
    assert {"host": "cmp1", "power": "off", "instances": []} in shown["hosts"]
    assert {d["node"] for d in shown["drbd"] if d["resource"] == "r0"} == {"cmp1", "cmp2"}
    assert shown["faults_in_force"] == {"f1": "host_crash host=cmp1 power_back=True"}


def test_status_all_json_is_the_list_labs_array(home: Path) -> None:
    topology = str(ROOT / "lab" / "topologies" / "drbd-pair.yaml")
    assert invoke("up", topology, "--lab", "ja")[0] == 0
    code, out, _err = invoke("status", "--all", "--json")
    assert code == 0
    mine = [r for r in json.loads(out) if r["store"] == str(home.resolve())]
    assert [(r["lab"], r["backend"]) for r in mine] == [("ja", "sim")]


def test_a_backend_whose_dependencies_are_missing_is_listed_not_a_crash(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A wheel installed without the `vm` extra cannot import the libvirt backend."""
    monkeypatch.setitem(REGISTRY, "ghost", "stackdrill_not_installed.backend:Ghost")
    code, out, err = invoke("list", "backends", "--json")
    assert code == 0, err
    ghost = next(r for r in json.loads(out) if r["name"] == "ghost")
    assert ghost["available"] is False
    assert ghost["why_not"] == "not installed: No module named 'stackdrill_not_installed'"
    code, out, _err = invoke("list", "drills", "--json")
    assert code == 0 and all("ghost" not in r["runs_on"] for r in json.loads(out))
    code, _out, err = invoke("backends")
    assert code == 0 and "backend ghost is not installed" in err
