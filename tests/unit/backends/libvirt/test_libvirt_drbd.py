"""DRBD in the guests, as the final read sees it: /proc/drbd's flags, and a handshake
still under way when the drill ends."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from stackdrill.api import DrbdNodeStatus
from stackdrill.backends.libvirt import drbd as vdrbd
from stackdrill.topology import DrbdResource

PROC = """version: 8.4.11 (api:1/proto:86-101)
 0: cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C s---F-
    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:16
"""


def test_proc_drbd_flags_say_suspended_and_oos_is_read() -> None:
    st = vdrbd.parse_proc_drbd(PROC, 0)
    assert st is not None and st.suspended and st.out_of_sync_kb == 16
    running = vdrbd.parse_proc_drbd(PROC.replace("s---F-", "r-----"), 0)
    assert running is not None and not running.suspended


def test_a_handshake_under_way_at_the_end_is_waited_for_then_named(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The final read waits (bounded) for a DRBD handshake a late boot began; one that does
    not finish is named, for an infrastructure error instead of a verdict."""
    res = DrbdResource(name="r0", nodes=("a", "b"), disk="sdb", size_gb=1, network="n")
    lab = SimpleNamespace(topology=SimpleNamespace(drbd=(res,)))
    seen = iter(["WFSyncUUID", "WFSyncUUID", "SyncTarget"])
    monkeypatch.setattr(vdrbd, "SETTLE_POLL_S", 0.001)
    monkeypatch.setattr(vdrbd, "status", lambda _lab, _res: {
        "b": DrbdNodeStatus("Secondary", "Inconsistent", next(seen, "Connected"))})
    # a wall-clock bound (wait_until): generous, since a settled handshake ends the wait
    assert vdrbd.settle_handshakes(lab, 5.0) == []  # type: ignore[arg-type]
    monkeypatch.setattr(vdrbd, "status", lambda _lab, _res: {
        "b": DrbdNodeStatus("Secondary", "Outdated", "WFSyncUUID")})
    assert vdrbd.settle_handshakes(lab, 0.05) == ["r0@b WFSyncUUID"]  # type: ignore[arg-type]
