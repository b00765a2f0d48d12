"""Namespace operations on the real kernel: finding and killing what runs inside."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from netns_helpers import needs_root

from stackdrill.backends.netns import nsops

pytestmark = [needs_root, pytest.mark.netns]


def test_one_pass_finds_each_namespaces_processes_and_removal_leaves_none() -> None:
    names = [f"sd-ffee-t-nsops{i}-{os.getpid()}" for i in range(3)]
    nsops.create_namespaces(names)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs = [nsops.spawn(ns, ["sh", "-c", "echo in; exec sleep 60"],
                             stdout=subprocess.PIPE) for ns in names[:2]]
        assert all(p.stdout and p.stdout.readline() == b"in\n" for p in procs)  # inside now
        found = nsops.pids_by_namespace([*names, "sd-ffee-t-absent"])
        assert found == {names[0]: [procs[0].pid], names[1]: [procs[1].pid], names[2]: [],
                         "sd-ffee-t-absent": []}
        assert nsops.ns_pids(names[1]) == [procs[1].pid]
        nsops.remove_namespaces(names)
        assert all(p.wait(timeout=10) == -9 for p in procs)  # SIGKILLed, none left running
        assert not set(names) & set(nsops.list_namespaces())
    finally:
        for p in procs:
            p.kill()
        nsops.remove_namespaces(names)


def test_creating_namespaces_leaves_the_calling_thread_in_its_own() -> None:
    """Namespaces are made by switching this thread into each new one: it must come back,
    also when a name is taken, and every namespace must be a new one."""
    here = Path("/proc/thread-self/ns/net")
    home = str(here.readlink())
    names = [f"sdt-create{i}-{os.getpid()}" for i in range(2)]
    nsops.create_namespaces(names)
    try:
        assert str(here.readlink()) == home
        made = {f"net:[{(nsops.NETNS_DIR / n).stat().st_ino}]" for n in names}
        assert len(made) == 2 and home not in made
        with pytest.raises(FileExistsError):
            nsops.create_namespaces([names[1]])
        assert str(here.readlink()) == home
    finally:
        nsops.remove_namespaces(names)
