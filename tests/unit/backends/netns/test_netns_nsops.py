"""Namespace operations on the real kernel: finding and killing what runs inside."""

from __future__ import annotations

import os
import subprocess

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
