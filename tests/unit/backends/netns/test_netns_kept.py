"""A lab kept with `run --keep --backend netns` is recorded and stands: no other run
reclaims it, `down --all` leaves it, `status` can say how to reach it, `down --lab NAME`
removes it to the last namespace; it cannot be driven by further commands (a lab from
`stackdrill up` can: test_netns_named_labs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from netns_helpers import dead_labs, needs_root, small_topology, small_topology_data

from stackdrill.backends.netns import NetnsBackend, nsops
from stackdrill.backends.netns.cleanup import STATE_ROOT
from stackdrill.backends.netns.lab import NetnsLab
from stackdrill.backends.netns.names import REGISTRY_DIR, read_slots
from stackdrill.backends.netns.nbd import NbdClient

pytestmark = [needs_root, pytest.mark.netns, dead_labs]

SRC = str(Path(__file__).parents[4] / "src")
DRILL = """\
name: {name}
topology: topo.yaml
duration_s: 2
workload: {{write_interval_s: 0.2}}
schedule:
  - {{at: 1, id: cut, inject: {{kind: partition, groups: [[cmp1], [cmp2]], network: mgmt}}}}
expect:
  - {{check: exactly_once}}
"""


def _stackdrill(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a user pipes it: no COLUMNS from the test runner (which would fold a
    long lab name in a table column)."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env |= {"PYTHONPATH": SRC, "STACKDRILL_HOME": str(cwd / "home")}
    return subprocess.run([sys.executable, "-m", "stackdrill", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180, check=False)


def _keep_a_lab(tmp_path: Path, drill: str) -> tuple[str, str]:
    """`stackdrill run --backend netns --keep` in its own process, which then exits; the
    kept lab's slot id and name. The drill's name carries this process's pid: another
    test run on the machine keeps its own lab, never one of the same name. A lab kept
    but not as expected is removed before the assertion fails, not left behind."""
    drill = f"{drill}-p{os.getpid()}"
    (tmp_path / "topo.yaml").write_text(yaml.safe_dump(small_topology_data("kept")))
    (tmp_path / "drill.yaml").write_text(DRILL.format(name=drill))
    done = _stackdrill(tmp_path, "run", "drill.yaml", "--backend", "netns", "--keep", "-q")
    name = f"{drill}-1"
    kept = [r for r in read_slots() if r.lab_name == name]
    if not (done.returncode in (0, 1) and len(kept) == 1 and kept[0].kept
            and kept[0].pid is None):
        NetnsBackend.teardown(name)
        raise AssertionError(f"exit {done.returncode}, kept {kept}: {done.stderr[-2000:]}")
    assert "Traceback" not in done.stderr, done.stderr
    return kept[0].lab_id, name


def _ours(lab_id: str) -> list[str]:
    return [n for n in nsops.list_namespaces() if n.startswith(f"sd-{lab_id}-")]


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in state  # a zombie nobody reaped has stopped serving


class TestKeptLab:
    def test_survives_another_runs_reclaim_and_down_all_and_is_reachable(
            self, tmp_path: Path) -> None:
        lab_id, name = _keep_a_lab(tmp_path, "kept-survives")
        try:
            spaces = set(_ours(lab_id))
            assert f"sd-{lab_id}-h-cmp1" in spaces and f"sd-{lab_id}-i-web1" in spaces
            # a second netns lab reclaims every stale slot while it allocates its own
            with NetnsLab(small_topology("second"), "second-run", start_workloads=False):
                assert set(_ours(lab_id)) == spaces
            removed = NetnsBackend.cleanup_all()
            assert set(_ours(lab_id)) == spaces
            assert not [r for r in removed if f"{lab_id}" in r]
            assert name in NetnsBackend.kept_labs()
            # reachable: the volume is still served over NBD, the fault still in force
            sock = nsops.socket_in(f"sd-{lab_id}-h-cmp1")
            sock.settimeout(5)
            sock.connect(("10.0.0.1", 10809))
            NbdClient(sock, "vol1").close()
            tables = subprocess.run(["ip", "netns", "exec", f"sd-{lab_id}-h-cmp1", "nft",
                                     "list", "tables"], capture_output=True, text=True,
                                    timeout=30, check=True).stdout
            assert f"sd_{lab_id}_" in tables
            text = NetnsBackend.describe_kept(name)
            assert text is not None
            for ns in spaces:
                assert ns in text
            assert "frozen" in text and "partition" in text and "served by nbdkit" in text
        finally:
            NetnsBackend.teardown(name)

    def test_the_cli_shows_it_keeps_it_through_down_all_and_removes_it_by_name(
            self, tmp_path: Path) -> None:
        lab_id, name = _keep_a_lab(tmp_path, "kept-cli")
        elsewhere = tmp_path / "elsewhere"  # another checkout: no record of this lab
        elsewhere.mkdir()
        try:
            shown = _stackdrill(tmp_path, "status", "--lab", name)
            assert shown.returncode == 0, shown.stderr
            assert f"sd-{lab_id}-h-cmp1" in shown.stdout and "frozen" in shown.stdout
            assert f"stackdrill down --lab {name}" in shown.stdout
            listed = _stackdrill(elsewhere, "status", "--all")
            assert name in listed.stdout
            assert _stackdrill(elsewhere, "down", "--all").returncode == 0
            assert f"sd-{lab_id}-h-cmp1" in _ours(lab_id)
            down = _stackdrill(elsewhere, "down", "--lab", name)
            assert down.returncode == 0, down.stderr
            assert name not in NetnsBackend.kept_labs()
            assert _stackdrill(tmp_path, "down", "--lab", name).returncode == 0  # its record
            assert not (tmp_path / "home" / "labs" / f"{name}.json").exists()
        finally:
            NetnsBackend.teardown(name)

    def test_down_lab_removes_it_and_leaves_nothing(self, tmp_path: Path) -> None:
        lab_id, name = _keep_a_lab(tmp_path, "kept-down")
        server = int((STATE_ROOT / lab_id / "nbdkit-vol1.pid").read_text())
        assert _running(server)
        removed = NetnsBackend.teardown(name)
        assert removed and all(n.startswith(f"sd-{lab_id}-") for n in removed)
        assert not _running(server)
        assert NetnsBackend.describe_kept(name) is None
        assert name not in NetnsBackend.kept_labs()
        # the id may already belong to a parallel test's new lab: then it is not ours
        if not [r for r in read_slots() if r.lab_id == lab_id]:
            assert not _ours(lab_id)
            assert not (STATE_ROOT / lab_id).exists()
            assert not (REGISTRY_DIR / f"{lab_id}.json").exists()
            links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                                   timeout=30, check=True).stdout
            assert f" sd{lab_id}" not in links


class TestNamedLabs:
    def test_a_kept_lab_is_not_driven_by_further_commands(self, tmp_path: Path) -> None:
        _lab_id, name = _keep_a_lab(tmp_path, "kept-named")
        try:
            done = _stackdrill(tmp_path, "inject", "host_crash", "host=cmp1", "--lab", name)
            assert done.returncode == 2 and "Traceback" not in done.stderr
            assert "was kept by `stackdrill run --keep`" in done.stderr
            assert "`stackdrill up` brings up a lab that later commands can drive" in done.stderr
        finally:
            NetnsBackend.teardown(name)
