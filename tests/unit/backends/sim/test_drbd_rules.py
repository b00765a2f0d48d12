"""Walk DRBD 8.4's state-change rule table: each rule refuses a state that breaks it, with
DRBD's code and message, and the nearest state that does not is accepted.

Every case is a request as drbd_state.c `_drbd_set_state` checks it (sanitize_state, then
is_valid_transition, is_valid_state with the old-state exemption, is_valid_soft_transition).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from stackdrill.backends.sim.drbd_model import Disk, Role
from stackdrill.backends.sim.drbd_rules import (
    CS,
    MESSAGES,
    SOFT_RULES,
    STATE_RULES,
    TRANSITION_RULES,
    DState,
    Options,
    Rule,
    sanitize,
)
from stackdrill.backends.sim.drbd_statechange import Change, cluster_wide, request, set_state

P, S, U = Role.PRIMARY, Role.SECONDARY, Role.UNKNOWN
CONNECTED = DState(S, S, CS.CONNECTED, Disk.UP_TO_DATE, Disk.UP_TO_DATE)
ALONE = DState(S, U, CS.WF_CONNECTION, Disk.UP_TO_DATE, Disk.DUNKNOWN)
DONT_CARE, RESOURCE = Options(), Options(fencing="resource-only")

# rule name, options, old state, a change the rule refuses, the nearest change it accepts
CASES: list[tuple[str, Options, DState, Change, Change]] = [
    ("SS_TWO_PRIMARIES", DONT_CARE, replace(CONNECTED, peer=P), Change(role=P),
     Change(role=S, disk=Disk.UP_TO_DATE)),
    ("SS_DEVICE_IN_USE", DONT_CARE, replace(CONNECTED, role=P, held_open=True),
     Change(role=S), Change(role=P)),
    ("SS_NO_UP_TO_DATE_DISK", DONT_CARE, replace(ALONE, disk=Disk.CONSISTENT),
     Change(role=P), Change(role=P, disk=Disk.UP_TO_DATE)),
    ("SS_PRIMARY_NOP", RESOURCE, ALONE, Change(role=P), Change(role=P, pdsk=Disk.OUTDATED)),
    ("SS_CONNECTED_OUTDATES", DONT_CARE, CONNECTED, Change(pdsk=Disk.DUNKNOWN),
     Change(pdsk=Disk.OUTDATED)),
    ("SS_RESYNC_RUNNING", DONT_CARE, replace(CONNECTED, conn=CS.SYNC_SOURCE,
                                             pdsk=Disk.INCONSISTENT),
     Change(conn=CS.STARTING_SYNC_S), Change(conn=CS.CONNECTED)),
    ("SS_ALREADY_STANDALONE", DONT_CARE, replace(ALONE, conn=CS.STANDALONE),
     Change(conn=CS.DISCONNECTING), Change(conn=CS.UNCONNECTED)),
    ("SS_IS_DISKLESS", DONT_CARE, replace(CONNECTED, disk=Disk.DISKLESS),
     Change(disk=Disk.FAILED), Change(disk=Disk.DISKLESS)),
    ("SS_LOWER_THAN_OUTDATED", DONT_CARE, replace(ALONE, disk=Disk.INCONSISTENT),
     Change(disk=Disk.OUTDATED), Change(disk=Disk.INCONSISTENT, role=S)),
    ("SS_OUTDATE_WO_CONN", DONT_CARE, ALONE, Change(conn=CS.DISCONNECTING, pdsk=Disk.OUTDATED),
     Change(conn=CS.DISCONNECTING)),
    ("SS_NEED_CONNECTION", DONT_CARE, ALONE, Change(conn=CS.SYNC_TARGET),
     Change(conn=CS.UNCONNECTED)),
    ("SS_IN_TRANSIENT_STATE", DONT_CARE, replace(ALONE, conn=CS.DISCONNECTING),
     Change(conn=CS.WF_CONNECTION), Change(conn=CS.STANDALONE)),
    ("SS_NO_VERIFY_ALG", DONT_CARE, CONNECTED, Change(conn=CS.VERIFY_S),
     Change(conn=CS.STARTING_SYNC_S)),
]


@pytest.mark.parametrize(("name", "opts", "os", "refused", "accepted"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_rule_refuses_its_state_with_drbds_code_and_accepts_the_nearest(
        name: str, opts: Options, os: DState, refused: Change, accepted: Change) -> None:
    out = set_state(os, refused.apply(os), opts)
    assert out.refused is not None and out.refused.name == name
    assert str(out.refused) == f"({out.refused.code}) {MESSAGES[out.refused.code]}"
    assert set_state(os, accepted.apply(os), opts).refused is None


def test_every_rule_of_the_table_is_walked_and_cites_the_source() -> None:
    """No rule in the table without a case above (or a reason it cannot be reached)."""
    walked = {c[0] for c in CASES}
    # unreachable through a request in 8.4: sanitize_state clamps a connected disk first
    # (StandAlone -> WFConnection is SS_NEED_CONNECTION by is_valid_conn_transition first)
    unreachable = {"SS_NO_LOCAL_DISK", "SS_NO_REMOTE_DISK", "SS_NO_NET_CONFIG"}
    rules: tuple[Rule, ...] = STATE_RULES + SOFT_RULES + TRANSITION_RULES
    assert {r.name for r in rules} <= walked | unreachable
    assert all(r.source.startswith("drbd_state.c ") and r.code in MESSAGES for r in rules)


def test_verify_is_refused_by_the_soft_rules_without_a_connection_or_during_a_resync() -> None:
    """is_valid_soft_transition: VerifyS from below Connected is SS_NEED_CONNECTION, from a
    resync SS_RESYNC_RUNNING; with a verify-alg from Connected it is accepted."""
    alg = Options(verify_alg=True)
    out = set_state(ALONE, Change(conn=CS.VERIFY_S).apply(ALONE), alg)
    assert out.refused is not None and out.refused.name == "SS_NEED_CONNECTION"
    syncing = replace(CONNECTED, conn=CS.SYNC_SOURCE, pdsk=Disk.INCONSISTENT)
    out = set_state(syncing, Change(conn=CS.VERIFY_S).apply(syncing), alg)
    assert out.refused is not None and out.refused.name == "SS_RESYNC_RUNNING"
    assert set_state(CONNECTED, Change(conn=CS.VERIFY_S).apply(CONNECTED), alg).refused is None


def test_starting_a_resync_or_a_verify_is_a_cluster_wide_change() -> None:
    """cl_wide_st_chg: the peer must agree to StartingSyncS/T and to VerifyS."""
    for conn in (CS.STARTING_SYNC_S, CS.STARTING_SYNC_T, CS.VERIFY_S):
        assert cluster_wide(CONNECTED, replace(CONNECTED, conn=conn))
    assert not cluster_wide(CONNECTED, replace(CONNECTED, conn=CS.SYNC_SOURCE))


def test_old_state_broken_the_same_way_does_not_stop_a_change() -> None:
    """_drbd_set_state: "If the old state was illegal as well, then let this happen": a
    Primary alone without a fenced peer (SS_PRIMARY_NOP already) may still disconnect."""
    os = DState(P, U, CS.WF_CONNECTION, Disk.UP_TO_DATE, Disk.DUNKNOWN)
    assert set_state(os, Change(conn=CS.DISCONNECTING).apply(os), RESOURCE).refused is None


def test_sanitize_drops_the_peer_and_aborts_a_resync_as_drbd_does() -> None:
    os = DState(P, S, CS.SYNC_SOURCE, Disk.UP_TO_DATE, Disk.INCONSISTENT)
    lost = sanitize(os, replace(os, conn=CS.NETWORK_FAILURE), DONT_CARE)
    assert (lost.peer, lost.pdsk) == (U, Disk.INCONSISTENT)
    failed = sanitize(os, replace(os, disk=Disk.FAILED), DONT_CARE)
    assert failed.conn is CS.CONNECTED  # "Resync aborted."
    up = sanitize(CONNECTED, replace(CONNECTED, disk=Disk.OUTDATED), DONT_CARE)
    assert up.disk is Disk.UP_TO_DATE  # Consistent and Outdated vanish when connected
    stonith = Options(fencing="resource-and-stonith")
    cut = sanitize(replace(os, conn=CS.CONNECTED), replace(os, conn=CS.NETWORK_FAILURE,
                                                           pdsk=Disk.UP_TO_DATE), stonith)
    assert cut.susp_fen and cut.pdsk is Disk.DUNKNOWN


def test_a_cluster_wide_change_is_checked_by_the_peer_mirrored() -> None:
    """drbd_req_state + receive_req_state/convert_state: detaching the only UpToDate disk
    of a Connected pair whose Primary is Diskless is refused by that peer."""
    me = DState(S, P, CS.CONNECTED, Disk.UP_TO_DATE, Disk.DISKLESS)
    peer = DState(P, S, CS.CONNECTED, Disk.DISKLESS, Disk.UP_TO_DATE)
    detach = Change(disk=Disk.FAILED)
    assert cluster_wide(me, detach.apply(me))
    out = request(me, detach, DONT_CARE, peer)
    assert out.refused is not None and str(out.refused) == \
        "(-10) State change was refused by peer node"
    assert request(me, detach, DONT_CARE, peer, hard=True).refused is None  # --force
    assert request(me, detach, DONT_CARE, None).waits_for_peer  # dead link: no answer yet
