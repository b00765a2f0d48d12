"""`stackdrill recover --lab NAME [--dry-run] [--parallel N] [--assume-fenced]` end to end
with the lab lifecycle commands, as an operator reproducing a failure by hand would run
it: the plan before acting, refusal to evacuate a merely partitioned host, a clear
answer on a healthy lab, and `--assume-fenced` for a host the operator unplugged."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdrill.cli import cli

TOPO = str(Path(__file__).resolve().parents[3] / "lab" / "topologies" / "nova-drbd.yaml")


def sd(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STACKDRILL_HOME", str(tmp_path))
    assert sd("up", TOPO, "--lab", "r1")[0] == 0
    return "r1"


def test_dry_run_prints_the_plan_and_changes_nothing(lab: str) -> None:
    sd("inject", "host_crash", "host=cmp1", "--lab", lab)
    sd("wait", "60", "--lab", lab)
    code, out = sd("recover", "--lab", lab, "--dry-run", "--parallel", "2")
    assert code == 0, out
    assert "cmp1 is down" in out and "fenced first" in out
    for name in ("web1", "db1", "app1"):
        assert name in out
    assert "--parallel 2" in out
    code, out = sd("status", "--lab", lab)
    assert "web1" not in out.split("cmp2")[1].split("\n")[0]  # nothing moved
    code, out = sd("verify", "--lab", lab)
    assert code == 1  # cmp1's instances are still down: the dry run did nothing


def test_recover_then_verify_passes(lab: str) -> None:
    sd("inject", "host_crash", "host=cmp1", "power_back=false", "--lab", lab)
    sd("wait", "60", "--lab", lab)
    code, out = sd("recover", "--lab", lab, "--parallel", "1")
    assert code == 0, out
    assert "fenced" in out and "verified running" in out
    assert out.count("recovered") >= 3
    code, out = sd("verify", "--lab", lab)
    assert code == 0, out


def test_healthy_lab_has_nothing_to_recover(lab: str) -> None:
    code, out = sd("recover", "--lab", lab)
    assert code == 0 and "nothing to recover" in out
    code, out = sd("status", "--lab", lab)
    assert "time=0.0s" in out  # it did not sit out a monitoring budget


def test_a_lost_storage_server_is_something_to_recover(lab: str) -> None:
    """Its guests still "run" (frozen on their volumes) and every compute host heartbeats:
    `recover` must not answer "nothing to recover" (it did, on a kept libvirt lab)."""
    sd("inject", "host_crash", "host=sto1", "power_back=false", "--lab", lab)
    code, out = sd("recover", "--lab", lab, "--parallel", "4")
    assert code == 0, out
    assert "nothing to recover" not in out and "sto1 is down" in out
    assert out.count("recovered") >= 6, out  # every guest again, through sto2


def test_partitioned_host_is_only_suspect_in_the_plan(lab: str) -> None:
    sd("inject", "partition", "groups=cmp2|ctl1,cmp1,cmp3,sto1,sto2", "network=mgmt",
       "--lab", lab)
    sd("wait", "60", "--lab", lab)
    code, out = sd("recover", "--lab", lab, "--dry-run")
    assert code == 0
    assert "cmp2" in out and "not evacuating" in out
    assert "nothing to recover" in out


def test_assume_fenced_recovers_a_host_whose_bmc_is_down(lab: str) -> None:
    """The operator pulled cmp1's plug while its BMC is unreachable: without the flag the
    engine refuses (exit 1, reason shown); with it, recovery goes ahead."""
    sd("inject", "power_controller_down", "host=cmp1", "--lab", lab)
    sd("inject", "host_crash", "host=cmp1", "power_back=false", "--lab", lab)
    sd("wait", "60", "--lab", lab)
    code, out = sd("recover", "--lab", lab)
    assert code == 1
    assert "cannot be fenced" in out and "blocked" in out
    code, out = sd("recover", "--lab", lab, "--assume-fenced")
    assert code == 0, out
    assert "ASSUMED" in out
    code, out = sd("verify", "--lab", lab)
    assert code == 0, out


def test_dry_run_judges_hosts_with_the_profiles_grace(lab: str) -> None:
    """A host silent for 45 s is down under the bundled engine's 30 s grace but not yet
    under Masakari's 60 s (Nova's service_down_time); the dry run must say what the
    engine of that profile would do, not what the default engine would."""
    sd("inject", "host_crash", "host=cmp1", "power_back=false", "--lab", lab)
    sd("wait", "45", "--lab", lab)
    code, out = sd("recover", "--lab", lab, "--dry-run")
    assert code == 0, out
    assert "cmp1 is down" in out and "grace 30 s" in out
    assert "10 per target host" in " ".join(out.split())  # no global cap by default
    code, out = sd("recover", "--lab", lab, "--dry-run", "--profile", "masakari")
    assert code == 0, out
    assert "cmp1 is down" not in out and "nothing to recover" in out
    sd("wait", "30", "--lab", lab)
    code, out = sd("recover", "--lab", lab, "--dry-run", "--profile", "masakari")
    assert "cmp1 is down" in out and "grace 60 s" in out
    # Masakari's host_failure_recovery_threads, a pool per failed host
    assert "3 per failed host" in " ".join(out.split())


def test_parallel_defaults_to_the_engines(lab: str) -> None:
    code, out = sd("recover", "--help")
    assert code == 0
    assert ("the profile's: none, the lab's capacity decides (10 per target host, 2 x its "
            "server's vCPUs per storage backend); masakari: no cap either, 3 per failed "
            "host") in " ".join(out.split())
