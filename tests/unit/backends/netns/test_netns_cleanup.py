"""Teardown is certain: Ctrl-C, a killed owner, `down --all`; nothing else is touched."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from netns_helpers import dead_labs, needs_root

from stackdrill.backends.netns import nsops
from stackdrill.backends.netns.cleanup import down_all
from stackdrill.backends.netns.names import _registry_lock as registry_lock
from stackdrill.backends.netns.names import read_slots

pytestmark = [needs_root, pytest.mark.netns, dead_labs]

HELPERS = str(Path(__file__).parent)
SRC = str(Path(__file__).parents[4] / "src")
SCRIPT = f"""
import sys, time
sys.path[:0] = [{SRC!r}, {HELPERS!r}]
from netns_helpers import small_topology
from stackdrill.backends.netns.lab import NetnsLab
with NetnsLab(small_topology("sig"), sys.argv[1]) as lab:
    print(lab.names.lab_id, flush=True)
    time.sleep(60)
"""


# Runs the rest of its arguments as a new python whose SIGINT, SIGTERM and SIGHUP have
# their default meaning even when this test run inherited them ignored (a CI started under
# nohup or as a background job ignores SIGINT and SIGHUP): the same pid, after exec.
DEFAULT_SIGNALS = (
    "import os, signal, sys\n"
    "for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP): signal.signal(s, signal.SIG_DFL)\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def _start_lab_process(name: str = "sig") -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-c", DEFAULT_SIGNALS, "-c", SCRIPT, name],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lab_id = proc.stdout.readline().strip()
    assert lab_id, "the lab did not come up"
    return proc, lab_id


def _ours(lab_id: str) -> list[str]:
    return [n for n in nsops.list_namespaces() if n.startswith(f"sd-{lab_id}-")]


def _dead_lab_gone(lab_id: str, pid: int) -> bool:
    """The killed lab's namespaces are gone, or its id already belongs to a new live lab
    of a parallel test (which removed the leftovers under the registry lock first)."""
    owners = [r.pid for r in read_slots() if r.lab_id == lab_id]
    return not _ours(lab_id) or bool(owners and owners[0] != pid)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_tears_the_lab_down(sig: signal.Signals) -> None:
    proc, lab_id = _start_lab_process()
    assert _ours(lab_id)
    proc.send_signal(sig)
    proc.wait(timeout=20)
    assert _dead_lab_gone(lab_id, proc.pid)


def test_down_all_removes_a_killed_labs_leftovers_and_nothing_else() -> None:
    """SIGKILL leaves namespaces (its processes die with it); down_all removes them, skips a
    namespace of another shape, and leaves a live lab's namespaces alone."""
    foreign = f"stackdrill-test-not-ours-{os.getpid()}"  # a leak never breaks the next run
    nsops.create_namespaces([foreign])
    try:
        live, live_id = _start_lab_process()
    except BaseException:
        nsops.remove_namespace(foreign)
        raise
    try:
        proc, lab_id = _start_lab_process()
        proc.kill()
        proc.wait(timeout=10)
        assert _ours(lab_id)
        # the lab's processes die with it (PR_SET_PDEATHSIG); under load that takes a moment
        deadline = time.monotonic() + 10
        while [p for ns in _ours(lab_id) for p in nsops.ns_pids(ns)] and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [p for ns in _ours(lab_id) for p in nsops.ns_pids(ns)]  # died with it
        report = down_all()
        assert _dead_lab_gone(lab_id, proc.pid)
        assert all(ns.startswith("sd-") for ns in report.namespaces)
        assert foreign in nsops.list_namespaces()
        assert _ours(live_id) and set(_ours(live_id)) <= set(report.skipped_live)
    finally:
        live.send_signal(signal.SIGINT)
        live.wait(timeout=20)
        nsops.remove_namespace(foreign)
    assert _dead_lab_gone(live_id, live.pid)


def test_backend_teardown_and_cleanup_all_are_what_stackdrill_down_calls() -> None:
    """`stackdrill down --lab NAME` calls NetnsBackend.teardown(NAME), `--all` calls
    cleanup_all(): both remove a dead lab's namespaces and leave a live lab alone (the
    same-named live one included)."""
    from stackdrill.backends.netns import NetnsBackend

    live, live_id = _start_lab_process("down-probe")
    try:
        proc, lab_id = _start_lab_process("down-probe")
        with registry_lock():  # no other run's bring-up reclaims the dead lab meanwhile
            proc.kill()
            proc.wait(timeout=10)
            assert _ours(lab_id)
        removed = NetnsBackend.teardown("down-probe")
        # (a lab created meanwhile by a parallel test reclaims dead slots too: what must
        # hold is that the dead lab is gone and only dead labs' names were removed)
        assert _dead_lab_gone(lab_id, proc.pid)
        assert all(n.startswith(f"sd-{lab_id}-") for n in removed)
        assert _ours(live_id)
        proc, lab_id = _start_lab_process("down-probe")
        proc.kill()
        proc.wait(timeout=10)
        removed = NetnsBackend.cleanup_all()
        assert _dead_lab_gone(lab_id, proc.pid)
        assert _ours(live_id) and not any(n.startswith(f"sd-{live_id}-") for n in removed)
    finally:
        live.send_signal(signal.SIGINT)
        live.wait(timeout=20)
    assert _dead_lab_gone(live_id, live.pid)
