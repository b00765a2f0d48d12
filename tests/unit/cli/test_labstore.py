"""A named lab's record holds the typed steps a drill's schedule holds, survives a save
and a load unchanged, and a record this version cannot read is a one-line error that
`down` can still clear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli, labstore
from stackdrill.cli.labstore import LabRecord
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.errors import LabStateError
from stackdrill.faults.catalogue import HostCrash, Partition

CRASH = HostCrash(host="cmp1", power_back=False)
SPLIT = Partition(groups=(("cmp2",), ("ctl1", "cmp1")), network="mgmt")


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    return tmp_path


def record() -> LabRecord:
    steps = (Step(at=0, id="f1", inject=CRASH), Step(at=5, id="f2", inject=SPLIT),
             Step(at=60, recover=RecoverSpec(parallel=2)), Step(at=83.5, heal="f1"))
    return LabRecord(name="t1", backend="sim", topology="/x/nova-drbd.yaml", seed=1,
                     now=90.0, steps=steps)


def test_a_record_round_trips_its_typed_steps() -> None:
    labstore.save(record())
    loaded = labstore.load("t1")
    assert loaded == record()
    assert loaded.steps[0].inject == CRASH
    assert loaded.steps[2].recover == RecoverSpec(parallel=2)


def test_faults_in_force_and_the_next_id() -> None:
    assert record().faults_in_force() == {"f2": SPLIT}
    assert record().next_fault_id() == "f3"
    assert record().at(120.0).steps == record().steps  # a wait adds no step


def test_an_old_record_is_a_clear_error_and_down_clears_it(home: Path) -> None:
    old = {"name": "t1", "backend": "sim", "topology": "/x.yaml", "seed": 1, "now": 0.0,
           "actions": [{"at": 0.0, "op": "inject", "id": "f1",
                        "fault": {"kind": "host_crash", "host": "cmp1"}, "options": {}}]}
    path = home / "labs" / "t1.json"
    path.parent.mkdir()
    path.write_text(json.dumps(old))
    with pytest.raises(LabStateError, match="cannot read its state"):
        labstore.load("t1")
    result = CliRunner().invoke(cli, ["status", "--lab", "t1"])
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "stackdrill down --lab t1" in result.stderr
    assert CliRunner().invoke(cli, ["down", "--lab", "t1"]).exit_code == 0
    assert not path.exists()


def test_a_record_that_is_not_json_is_a_clear_error(home: Path) -> None:
    (home / "labs").mkdir()
    (home / "labs" / "t1.json").write_text("{not json")
    with pytest.raises(LabStateError, match="unreadable state"):
        labstore.load("t1")
