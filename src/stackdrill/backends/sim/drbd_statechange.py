"""How DRBD 8.4 walks its rule tables for one state-change request.

drbd_state.c `_drbd_set_state`: sanitize, then `is_valid_transition`; unless the change is
hard (CS_HARD: a fact such as a failed disk or a forced detach), `is_valid_state` on the
new state, where a rule the old state broke as well does not stop the change ("If the old
state was illegal as well, then let this happen"), and `is_valid_soft_transition`.
`drbd_req_state`: a cluster-wide change (`cl_wide_st_chg`: a promotion, a detach or a
disconnect while Connected) is first checked on the new state without that exemption,
then sent to the peer, which checks it mirrored (drbd_receiver.c `convert_state`,
`receive_req_state`/`receive_req_conn_state`); a peer that refuses makes it
SS_CW_FAILED_BY_PEER. A peer that cannot answer keeps the request waiting until the
connection is lost (`_req_st_cond`: SS_CW_NO_NEED), then it is checked as a local change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stackdrill.backends.sim.drbd_model import Disk, Role
from stackdrill.backends.sim.drbd_rules import (
    CS,
    CW_FAILED_BY_PEER,
    DState,
    Options,
    Rule,
    sanitize,
    valid_soft_transition,
    valid_state,
    valid_transition,
)


@dataclass(frozen=True)
class Change:
    """The mask/val of a request: the fields it sets (None = left as they are)."""

    role: Role | None = None
    peer: Role | None = None
    conn: CS | None = None
    disk: Disk | None = None
    pdsk: Disk | None = None

    def apply(self, os: DState) -> DState:
        """apply_mask_val."""
        return replace(os, role=self.role or os.role, peer=self.peer or os.peer,
                       conn=os.conn if self.conn is None else self.conn,
                       disk=os.disk if self.disk is None else self.disk,
                       pdsk=os.pdsk if self.pdsk is None else self.pdsk)

    def mirrored(self) -> Change:
        """drbd_receiver.c convert_state: the request as the peer sees it."""
        conn = None if self.conn is None else _PEER_CONN.get(self.conn, self.conn)
        return Change(role=self.peer, peer=self.role, conn=conn, disk=self.pdsk, pdsk=self.disk)


_PEER_CONN = {CS.DISCONNECTING: CS.TEAR_DOWN, CS.STARTING_SYNC_S: CS.STARTING_SYNC_T,
              CS.STARTING_SYNC_T: CS.STARTING_SYNC_S, CS.VERIFY_S: CS.VERIFY_T}


@dataclass(frozen=True)
class Outcome:
    """The state a request leads to, the rule that refused it, or that it must wait."""

    ns: DState
    refused: Rule | None = None
    nothing_to_do: bool = False
    waits_for_peer: bool = False

    @property
    def ok(self) -> bool:
        return self.refused is None and not self.waits_for_peer


def cluster_wide(os: DState, ns: DState) -> bool:
    """drbd_state.c cl_wide_st_chg (the 8.4 connection keeps cstate C_WF_REPORT_PARAMS
    while its device is Connected, so `_conn_request_state` makes a disconnect cluster-wide
    there too)."""
    both = os.conn >= CS.CONNECTED and ns.conn >= CS.CONNECTED
    promote = os.role is not Role.PRIMARY and ns.role is Role.PRIMARY
    fail = os.disk is not Disk.FAILED and ns.disk is Disk.FAILED
    sync = any(os.conn is not cs and ns.conn is cs
               for cs in (CS.STARTING_SYNC_S, CS.STARTING_SYNC_T))
    return ((both and (promote or fail or sync))
            or (os.conn >= CS.CONNECTED and ns.conn is CS.DISCONNECTING)
            or (os.conn is CS.CONNECTED and ns.conn is CS.VERIFY_S))


def set_state(os: DState, ns: DState, opts: Options, hard: bool = False) -> Outcome:
    """drbd_state.c _drbd_set_state's checks (and conn_is_valid_transition's)."""
    ns = sanitize(os, ns, opts)
    if ns == os:
        return Outcome(ns, nothing_to_do=True)
    refused = valid_transition(os, ns, opts)
    if refused is None and not hard:
        refused = valid_state(os, ns, opts)
        if refused is None or valid_state(os, os, opts) == refused:
            refused = valid_soft_transition(os, ns, opts)
    return Outcome(ns, refused)


def request(os: DState, change: Change, opts: Options, peer: DState | None,
            hard: bool = False) -> Outcome:
    """drbd_req_state / _conn_request_state: `peer` is the peer's state when it can answer
    (None: the link is dead and the request waits for the connection to be lost)."""
    ns = sanitize(os, change.apply(os), opts)
    if hard or not cluster_wide(os, ns):
        return set_state(os, change.apply(os), opts, hard)
    refused = valid_transition(os, ns, opts)
    if refused is None and ns.conn is CS.DISCONNECTING:  # conn_is_valid_transition
        refused = set_state(os, change.apply(os), opts).refused
    elif refused is None:
        refused = valid_state(os, ns, opts) or valid_soft_transition(os, ns, opts)
    if refused is not None:
        return Outcome(ns, refused)
    if peer is None:
        return Outcome(ns, waits_for_peer=True)
    if not peer_accepts(peer, change, opts):
        return Outcome(ns, CW_FAILED_BY_PEER)
    return set_state(os, change.apply(os), opts)


def peer_accepts(peer: DState, change: Change, opts: Options) -> bool:
    """The peer applies the mirrored request with its own checks; a connection change is
    taken with CS_IGN_OUTD_FAIL: a disk below Outdated is not raised to Outdated."""
    mirrored = change.mirrored()
    pns = sanitize(peer, mirrored.apply(peer), opts)
    if mirrored.conn is not None and pns.disk is Disk.OUTDATED and peer.disk < Disk.OUTDATED:
        mirrored = replace(mirrored, disk=None)
    return set_state(peer, mirrored.apply(peer), opts).refused is None
