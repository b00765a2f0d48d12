"""`run --keep` on a backend whose labs outlive the process records the lab like `up`
does: `status --all` lists it (kept from which drill), `down --lab NAME` removes it
through the backend's teardown; a sim lab cannot outlive the run and says so."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import pytest
from click.testing import CliRunner

from stackdrill.api import Capabilities
from stackdrill.backends import REGISTRY
from stackdrill.backends.sim import SimBackend
from stackdrill.cli import cli

ROOT = Path(__file__).resolve().parents[3]
DRILL = ROOT / "lab" / "drills" / "quorum-two-node.yaml"


class OutlivingSim(SimBackend):
    """The simulator, declared as a backend whose labs hold resources outside the process
    (as netns and libvirt labs do); its teardown leaves a note of what it removed."""

    name = "outliving"
    capabilities: ClassVar[Capabilities] = Capabilities(
        faults=SimBackend.capabilities.faults, features=SimBackend.capabilities.features,
        needs="nothing", in_process=False)

    @classmethod
    def teardown(cls, lab_name: str) -> list[str]:
        home = Path(os.environ["STACKDRILL_HOME"])
        (home / "torn-down").write_text(lab_name)
        return [lab_name]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(REGISTRY, "outliving", f"{__name__}:OutlivingSim")
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    return tmp_path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})  # tables unwrapped
    return result.exit_code, result.stdout, result.stderr


def test_a_kept_lab_is_recorded_listed_and_removed_by_down(home: Path) -> None:
    code, out, err = invoke("run", str(DRILL), "--backend", "outliving", "--keep",
                            "--lab", "k1")
    assert code == 0, (out, err)
    assert out.index("PASS") < out.index("lab k1 kept")
    record = json.loads((home / "labs" / "k1.json").read_text())
    assert record["backend"] == "outliving"
    assert record["kept_from"] == {"drill": str(DRILL.resolve()), "drill_name": "quorum-two-node",
                                   "seed": record["seed"]}
    code, out, _err = invoke("status", "--all")
    assert code == 0 and "k1" in out and "kept by `run --keep`: run quorum-two-node" in out
    code, _out, err = invoke("run", str(DRILL), "--backend", "outliving", "--keep",
                             "--lab", "k1", "-q")
    assert code == 2 and "lab 'k1' already exists" in err
    code, out, _err = invoke("down", "--lab", "k1")
    assert code == 0 and "lab k1 is down" in out
    assert (home / "torn-down").read_text() == "k1"
    assert not (home / "labs" / "k1.json").exists()


def test_a_kept_lab_needs_a_valid_name(home: Path) -> None:
    code, out, err = invoke("run", str(DRILL), "--backend", "outliving", "--keep",
                            "--lab", "K 1", "-q")
    assert code == 2 and "invalid lab name" in err and "PASS" not in out
    assert not (home / "labs").exists() or not list((home / "labs").glob("*.json"))


def test_a_sim_lab_cannot_be_kept_and_says_so(home: Path) -> None:
    code, out, _err = invoke("run", str(DRILL), "--keep")
    assert code == 0 and "lives in this process only" in out
    assert not (home / "labs").exists() or not list((home / "labs").glob("*.json"))
