"""The guest agent's error handling, against libvirt's test driver (which has no agent)."""

from __future__ import annotations

import time

import pytest

libvirt = pytest.importorskip("libvirt")

from stackdrill.backends.libvirt.agent import GuestAgent, GuestCommandError  # noqa: E402


def test_a_connection_without_an_agent_fails_at_once_and_not_as_transient() -> None:
    """Only a slow or busy agent is worth polling again; a driver that cannot reach one
    at all is an error the caller sees immediately, with the domain's name."""
    conn = libvirt.open("test:///default")
    try:
        agent = GuestAgent(conn.lookupByName("test"))
        started = time.monotonic()
        with pytest.raises(GuestCommandError, match="test: agent guest-exec") as caught:
            agent.run("true", timeout=30)
        assert not caught.value.transient
        assert time.monotonic() - started < 5
        assert not agent.ping()
    finally:
        conn.close()
