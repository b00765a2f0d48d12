"""The guest-agent testinfra backend is used through testinfra's public Host, not its tables."""

from __future__ import annotations

import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed (scripts/setup.sh)")

from testinfra.backend import BACKENDS

from stackdrill.backends.libvirt.testinfra_backend import (
    GuestAgentBackend,
    guest_host,
)


def test_a_guest_host_is_built_without_writing_into_testinfras_private_table() -> None:
    host = guest_host("alice", uri="test:///default")
    assert isinstance(host.backend, GuestAgentBackend)
    assert host.backend.hostname == "alice" and host.backend.uri == "test:///default"
    assert "libvirt-agent" not in BACKENDS
