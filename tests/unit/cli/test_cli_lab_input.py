"""What a person types at a named lab is checked before it reaches the lab: a fault naming
a host, disk, network or overlay the topology lacks, and a number that is not finite or
out of bounds, are exit 2 with a clear line, nothing recorded, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli

ROOT = Path(__file__).resolve().parents[3]
TOPOLOGY = str(ROOT / "lab" / "topologies" / "nova-drbd.yaml")


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    assert invoke("up", TOPOLOGY, "--lab", "t1")[0] == 0
    return tmp_path


def recorded(home: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((home / "labs" / "t1.json").read_text())
    return data


@pytest.mark.parametrize(("params", "problem"), [
    (["host_crash", "host=cmp9"], "inject.host: unknown host 'cmp9'"),
    (["disk_failure", "host=cmp1", "disk=sdz"], "inject.disk: host 'cmp1' has no disk 'sdz'"),
    (["partition", "groups=cmp1|cmp2", "network=nope"], "inject.network: unknown network"),
    (["partition", "groups=cmp1|ghost"], "inject.groups[1][0]: unknown host 'ghost'"),
    (["cut", "pairs=cmp1,ghost"], "inject.pairs[0][1]: unknown host 'ghost'"),
    (["cut", "pairs=cmp1,cmp1"], "inject.pairs[0]: a host cannot be cut from itself"),
    (["tunnel_endpoint_down", "host=cmp1", "overlay=nope"], "inject.overlay: unknown overlay"),
    (["rate_limit", "host=cmp1", "network=storage", "mbit=inf"], "mbit: 'inf' is not a finite"),
    (["packet_loss", "host=cmp1", "network=storage", "probability=nan"], "not a finite"),
])
def test_a_fault_the_lab_cannot_have_is_refused(home: Path, params: list[str],
                                                problem: str) -> None:
    code, _out, err = invoke("inject", *params, "--lab", "t1")
    assert code == 2, err
    assert problem in err and "Traceback" not in err
    assert recorded(home)["steps"] == []  # nothing recorded as in force


def test_a_one_way_cut_is_injected_from_the_command_line(home: Path) -> None:
    code, _out, err = invoke("inject", "cut", "pairs=cmp1,ctl1|cmp2,ctl1", "one_way=true",
                            "network=mgmt", "--lab", "t1")
    assert code == 0, err
    (step,) = recorded(home)["steps"]  # type: ignore[misc]
    assert step["inject"]["pairs"] == [["cmp1", "ctl1"], ["cmp2", "ctl1"]]
    assert step["inject"]["one_way"] is True


@pytest.mark.parametrize("seconds", ["nan", "inf", "-inf", "-1", "86401", "1e400", "five"])
def test_wait_takes_a_finite_number_of_seconds_in_bounds(home: Path, seconds: str) -> None:
    code, _out, err = invoke("wait", seconds, "--lab", "t1")
    assert code == 2, err
    assert "SECONDS" in err and "Traceback" not in err
    assert recorded(home)["now"] == 0.0
    code, out, _err = invoke("wait", "5", "--lab", "t1")  # the lab still works
    assert code == 0 and "lab time is now 5.0s" in out


@pytest.mark.parametrize("name", ["demo\n", "Demo", "-x", "a" * 32, "a/b", "a.json"])
def test_a_lab_name_must_match_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     name: str) -> None:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    code, _out, err = invoke("up", TOPOLOGY, "--lab", name)
    assert code == 2 and "invalid lab name" in err
    assert not (tmp_path / "labs").exists() or list((tmp_path / "labs").iterdir()) == []


@pytest.mark.parametrize(("params", "problem"), [
    (["drbdadm", "host=sto9", "op=primary", "resource=r0"], "run.host: unknown host 'sto9'"),
    (["drbdadm", "host=sto1", "op=promote", "resource=r0"], "op: Input should be 'primary'"),
    (["drbdadm", "host=sto1", "op=primary"], "resource: required key is missing"),
    (["lvm", "host=sto1", "op=lvcreate", "vg=cinder-volumes", "lv=x", "extents=nan"],
     "not a finite"),
    (["drbdadm", "sto1"], "expected key=value"),
])
def test_an_operator_command_the_lab_cannot_run_is_refused(home: Path, params: list[str],
                                                           problem: str) -> None:
    code, _out, err = invoke("exec", *params, "--lab", "t1")
    assert code == 2, err
    assert problem in err and "Traceback" not in err
    assert recorded(home)["steps"] == []


def test_an_operator_command_runs_to_its_end_and_says_what_the_tool_said(home: Path) -> None:
    """On the simulator the command takes lab time: exec waits for its result. DRBD 8.4
    refuses a second Primary on a single-primary resource, and the exit code says so."""
    code, out, err = invoke("exec", "drbdadm", "host=sto2", "op=primary", "resource=r0",
                            "--lab", "t1")
    assert code == 1, err
    assert "drbdadm primary on sto2 failed" in out
    assert "Multiple primaries not allowed by config" in out
    (step,) = recorded(home)["steps"]  # type: ignore[misc]
    assert step["run"] == {"tool": "drbdadm", "host": "sto2", "op": "primary",
                           "resource": "r0", "force": False}
    code, out, err = invoke("exec", "drbdadm", "host=sto1", "op=secondary", "resource=r0",
                            "--lab", "t1")
    assert code == 1 and "held open" in out, out  # its LVs are active: in use


def test_up_refuses_a_topology_the_backend_cannot_realise(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dual-primary resource without allow_two_primaries is something only the
    simulator realises (DRBD refuses the second Primary at bring-up): `up` on libvirt says
    so in one line naming the setting, before looking for libvirt or creating anything."""
    from stackdrill.backends.libvirt import LibvirtBackend

    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    # were the topology not checked first, `up` would ask libvirt next: let it say no,
    # so that this test can never bring up guests
    monkeypatch.setattr(LibvirtBackend, "available",
                        classmethod(lambda cls: "not asked in this test"))
    topo = tmp_path / "pair.yaml"
    code, yaml_text, err = invoke("import",
                                  str(ROOT / "fixtures/dangers/dual-primary-without-allow"))
    assert code == 0, err
    topo.write_text(yaml_text)
    code, _out, err = invoke("up", str(topo), "--lab", "refused", "--backend", "libvirt")
    assert code == 2, err
    assert "Traceback" not in err
    assert "cannot realise drbd-refused-settings" in err and "allow_two_primaries" in err
    assert not (tmp_path / "labs" / "refused.json").exists()
