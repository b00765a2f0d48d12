"""DRBD 8.4's state-change rules as data: which (old, new) state pairs the kernel refuses.

Read from drbd/drbd_state.c of LINBIT's drbd-8.4: `is_valid_state` (a rule over the new
state alone, tried in order, the first match wins), `is_valid_soft_transition` (user
requests only; every condition overwrites the result, so the last match wins),
`is_valid_conn_transition`/`is_valid_transition` (also binding on hard changes) and
`sanitize_state` (the implied changes applied before any check). Codes and messages are
drbd.h's `enum drbd_state_rv` and drbd_strings.c's `drbd_state_sw_errors`, what drbdadm
prints as "State change failed: (code) message". How a request walks these tables
(`_drbd_set_state`, `drbd_req_state`) is `drbd_statechange`.

Left out, because the simulator has no such state: a peer too old for online verify
(SS_NOT_SUPPORTED), more than one volume (SS_O_VOL_PEER_PRI), the handshake's STATE_SENT
window, sync pauses (the *_isp bits) and on-no-data-accessible (susp_nod).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum

from stackdrill.backends.sim.drbd_model import Conn, Disk, Role


class CS(IntEnum):
    """enum drbd_conns (drbd.h), in the kernel's order: rules compare connection states."""

    STANDALONE = 0
    DISCONNECTING = 1
    UNCONNECTED = 2
    TIMEOUT = 3
    BROKEN_PIPE = 4
    NETWORK_FAILURE = 5
    PROTOCOL_ERROR = 6
    TEAR_DOWN = 7
    WF_CONNECTION = 8
    WF_REPORT_PARAMS = 9
    CONNECTED = 10
    STARTING_SYNC_S = 11
    STARTING_SYNC_T = 12
    WF_BITMAP_S = 13
    WF_BITMAP_T = 14
    WF_SYNC_UUID = 15
    SYNC_SOURCE = 16
    SYNC_TARGET = 17
    VERIFY_S = 18
    VERIFY_T = 19
    PAUSED_SYNC_S = 20
    PAUSED_SYNC_T = 21
    AHEAD = 22
    BEHIND = 23


CS_OF = {Conn.STANDALONE: CS.STANDALONE, Conn.WF_CONNECTION: CS.WF_CONNECTION,
         Conn.CONNECTED: CS.CONNECTED, Conn.SYNC_SOURCE: CS.SYNC_SOURCE,
         Conn.SYNC_TARGET: CS.SYNC_TARGET, Conn.VERIFY_S: CS.VERIFY_S,
         Conn.VERIFY_T: CS.VERIFY_T, Conn.PAUSED_SYNC_S: CS.PAUSED_SYNC_S,
         Conn.PAUSED_SYNC_T: CS.PAUSED_SYNC_T, Conn.UNCONFIGURED: CS.STANDALONE}

SS_SUCCESS, SS_NOTHING_TO_DO = 1, 2

MESSAGES = {  # drbd_strings.c drbd_state_sw_errors
    -1: "Multiple primaries not allowed by config",
    -2: "Need access to UpToDate data",
    -4: "Can not resync without local disk",
    -5: "Can not resync without remote disk",
    -6: "Refusing to be Outdated while Connected",
    -7: "Refusing to be Primary while peer is not outdated",
    -8: "Can not start OV/resync since it is already active",
    -9: "Can not disconnect a StandAlone device",
    -10: "State change was refused by peer node",
    -11: "Device is diskless, the requested operation requires a disk",
    -12: "Device is held open by someone",
    -13: "Have no net/connection configuration",
    -14: "Need a verify algorithm to start online verify",
    -15: "Need a connection to start verify or resync",
    -16: "Disk state is lower than outdated",
    -18: "In transient state, retry after next state change",
    -21: "Need a connection for a graceful disconnect/outdate peer",
}


@dataclass(frozen=True)
class DState:
    """One node's `union drbd_state`, plus `open_cnt != 0` (is_valid_state reads it)."""

    role: Role = Role.SECONDARY
    peer: Role = Role.UNKNOWN
    conn: CS = CS.STANDALONE
    disk: Disk = Disk.DISKLESS
    pdsk: Disk = Disk.DUNKNOWN
    susp_fen: bool = False
    held_open: bool = False


@dataclass(frozen=True)
class Options:
    """The configuration the rules read: disk-options fencing, net-options two-primaries."""

    fencing: str = "dont-care"
    two_primaries: bool = False
    has_net_conf: bool = True  # a connection is configured (not after `disconnect`)
    verify_alg: bool = False  # net-options verify-alg is set


Check = Callable[[DState, DState, Options], bool]


@dataclass(frozen=True)
class Rule:
    """One refusal: the SS_ code, the condition (True = refused) and where it is written."""

    code: int
    name: str
    refuses: Check
    source: str

    @property
    def message(self) -> str:
        return MESSAGES[self.code]

    def __str__(self) -> str:
        return f"({self.code}) {self.message}"


def fencing_of(os: DState, opts: Options) -> str:
    """is_valid_state/sanitize_state read the fencing policy only `if (get_ldev(device))`:
    a node without a disk of at least Inconsistent has FP_DONT_CARE."""
    return opts.fencing if os.disk >= Disk.INCONSISTENT else "dont-care"


def _primary(ns: DState) -> bool:
    return ns.role is Role.PRIMARY


_IVS = "drbd_state.c is_valid_state"
_VERIFY = (CS.VERIFY_S, CS.VERIFY_T)
STATE_RULES: tuple[Rule, ...] = (
    Rule(-1, "SS_TWO_PRIMARIES", lambda os, ns, o: o.has_net_conf and not o.two_primaries
         and _primary(ns) and ns.peer is Role.PRIMARY, f"{_IVS}: !nc->two_primaries"),
    Rule(-12, "SS_DEVICE_IN_USE", lambda os, ns, o: ns.role is Role.SECONDARY and ns.held_open,
         f"{_IVS}: ns.role == R_SECONDARY && device->open_cnt"),
    Rule(-2, "SS_NO_UP_TO_DATE_DISK", lambda os, ns, o: _primary(ns) and ns.conn < CS.CONNECTED
         and ns.disk < Disk.UP_TO_DATE, f"{_IVS}: R_PRIMARY, conn < C_CONNECTED, disk < UpToDate"),
    Rule(-7, "SS_PRIMARY_NOP", lambda os, ns, o: fencing_of(os, o) != "dont-care"
         and _primary(ns) and ns.conn < CS.CONNECTED and ns.pdsk >= Disk.DUNKNOWN,
         f"{_IVS}: fp >= FP_RESOURCE, R_PRIMARY, conn < C_CONNECTED, pdsk >= D_UNKNOWN"),
    Rule(-2, "SS_NO_UP_TO_DATE_DISK", lambda os, ns, o: _primary(ns)
         and ns.disk <= Disk.INCONSISTENT and ns.pdsk <= Disk.INCONSISTENT,
         f"{_IVS}: R_PRIMARY, disk <= Inconsistent, pdsk <= Inconsistent"),
    Rule(-4, "SS_NO_LOCAL_DISK", lambda os, ns, o: ns.conn > CS.CONNECTED
         and ns.disk < Disk.INCONSISTENT, f"{_IVS}: conn > C_CONNECTED, disk < Inconsistent"),
    Rule(-5, "SS_NO_REMOTE_DISK", lambda os, ns, o: ns.conn > CS.CONNECTED
         and ns.pdsk < Disk.INCONSISTENT, f"{_IVS}: conn > C_CONNECTED, pdsk < Inconsistent"),
    Rule(-2, "SS_NO_UP_TO_DATE_DISK", lambda os, ns, o: ns.conn > CS.CONNECTED
         and ns.disk < Disk.UP_TO_DATE and ns.pdsk < Disk.UP_TO_DATE,
         f"{_IVS}: conn > C_CONNECTED, disk and pdsk < UpToDate"),
    Rule(-6, "SS_CONNECTED_OUTDATES", lambda os, ns, o: ns.conn in (
         CS.CONNECTED, CS.WF_BITMAP_S, CS.SYNC_SOURCE, CS.PAUSED_SYNC_S)
         and ns.disk is Disk.OUTDATED, f"{_IVS}: Connected/SyncSource and disk == Outdated"),
    Rule(-14, "SS_NO_VERIFY_ALG", lambda os, ns, o: ns.conn in _VERIFY and not o.verify_alg,
         f"{_IVS}: VerifyS/VerifyT and verify_alg[0] == 0"),
    Rule(-2, "SS_NO_UP_TO_DATE_DISK", lambda os, ns, o: _primary(ns)
         and ns.disk < Disk.UP_TO_DATE and ns.pdsk < Disk.UP_TO_DATE,
         f"{_IVS}: R_PRIMARY, disk and pdsk < UpToDate"),
    Rule(-15, "SS_NEED_CONNECTION", lambda os, ns, o: ns.conn in (
         CS.STARTING_SYNC_S, CS.STARTING_SYNC_T) and ns.pdsk is Disk.DUNKNOWN,
         f"{_IVS}: StartingSync and pdsk == DUnknown"),
    Rule(-6, "SS_CONNECTED_OUTDATES", lambda os, ns, o: ns.conn >= CS.CONNECTED
         and ns.pdsk is Disk.DUNKNOWN, f"{_IVS}: conn >= C_CONNECTED, pdsk == DUnknown"),
)

_SOFT = "drbd_state.c is_valid_soft_transition"
_STARTING = (CS.STARTING_SYNC_S, CS.STARTING_SYNC_T)
SOFT_RULES: tuple[Rule, ...] = (  # in source order; the last one that refuses decides
    Rule(-8, "SS_RESYNC_RUNNING", lambda os, ns, o: ns.conn in _STARTING
         and os.conn > CS.CONNECTED, f"{_SOFT}: StartingSync while syncing"),
    Rule(-9, "SS_ALREADY_STANDALONE", lambda os, ns, o: ns.conn is CS.DISCONNECTING
         and os.conn is CS.STANDALONE, f"{_SOFT}: Disconnecting from StandAlone"),
    Rule(-11, "SS_IS_DISKLESS", lambda os, ns, o: ns.disk > Disk.ATTACHING
         and os.disk is Disk.DISKLESS, f"{_SOFT}: a disk state from Diskless"),
    Rule(-13, "SS_NO_NET_CONFIG", lambda os, ns, o: ns.conn is CS.WF_CONNECTION
         and os.conn < CS.UNCONNECTED, f"{_SOFT}: WFConnection without a net config"),
    Rule(-16, "SS_LOWER_THAN_OUTDATED", lambda os, ns, o: ns.disk is Disk.OUTDATED
         and os.disk < Disk.OUTDATED and os.disk is not Disk.ATTACHING,
         f"{_SOFT}: Outdated from below Outdated"),
    Rule(-18, "SS_IN_TRANSIENT_STATE", lambda os, ns, o: ns.conn is CS.DISCONNECTING
         and os.conn is CS.UNCONNECTED, f"{_SOFT}: Disconnecting from Unconnected"),
    Rule(-18, "SS_IN_TRANSIENT_STATE", lambda os, ns, o: os.role is not Role.PRIMARY
         and _primary(ns) and ns.pdsk is Disk.UP_TO_DATE
         and ns.disk not in (Disk.UP_TO_DATE, Disk.DISKLESS)
         and (ns.conn <= CS.WF_SYNC_UUID or ns.conn != os.conn),
         f"{_SOFT}: no promotion during the resync handshake of a forced primary"),
    Rule(-15, "SS_NEED_CONNECTION", lambda os, ns, o: ns.conn in _VERIFY
         and os.conn < CS.CONNECTED, f"{_SOFT}: Verify without a connection"),
    Rule(-8, "SS_RESYNC_RUNNING", lambda os, ns, o: ns.conn in _VERIFY and ns.conn != os.conn
         and os.conn > CS.CONNECTED, f"{_SOFT}: Verify while syncing or verifying"),
    Rule(-15, "SS_NEED_CONNECTION", lambda os, ns, o: ns.conn in _STARTING
         and os.conn < CS.CONNECTED, f"{_SOFT}: StartingSync without a connection"),
    Rule(-15, "SS_NEED_CONNECTION", lambda os, ns, o: ns.conn in (CS.SYNC_TARGET, CS.SYNC_SOURCE)
         and os.conn < CS.WF_REPORT_PARAMS, f"{_SOFT}: no NetworkFailure -> SyncTarget"),
    Rule(-21, "SS_OUTDATE_WO_CONN", lambda os, ns, o: ns.conn is CS.DISCONNECTING
         and ns.pdsk is Disk.OUTDATED and os.conn < CS.CONNECTED and os.pdsk > Disk.OUTDATED,
         f"{_SOFT}: outdating the peer needs the connection"),
)

_CONN = "drbd_state.c is_valid_conn_transition"
TRANSITION_RULES: tuple[Rule, ...] = (  # binding on hard changes too; the first one decides
    Rule(-9, "SS_ALREADY_STANDALONE", lambda os, ns, o: os.conn is CS.STANDALONE
         and ns.conn is CS.DISCONNECTING, f"{_CONN}: StandAlone -> Disconnecting"),
    Rule(-15, "SS_NEED_CONNECTION", lambda os, ns, o: os.conn is CS.STANDALONE
         and ns.conn not in (CS.STANDALONE, CS.UNCONNECTED),
         f"{_CONN}: StandAlone -> not Unconnected"),
    Rule(-15, "SS_NEED_CONNECTION", lambda os, ns, o: os.conn < CS.WF_REPORT_PARAMS
         and ns.conn >= CS.CONNECTED, f"{_CONN}: Connected only through WFReportParams"),
    Rule(-18, "SS_IN_TRANSIENT_STATE", lambda os, ns, o: CS.TIMEOUT <= os.conn <= CS.TEAR_DOWN
         and ns.conn not in (os.conn, CS.UNCONNECTED, CS.DISCONNECTING),
         f"{_CONN}: after a network error only Unconnected or Disconnecting"),
    Rule(-18, "SS_IN_TRANSIENT_STATE", lambda os, ns, o: os.conn is CS.DISCONNECTING
         and ns.conn not in (CS.DISCONNECTING, CS.STANDALONE),
         f"{_CONN}: after Disconnecting only StandAlone"),
    Rule(-11, "SS_IS_DISKLESS", lambda os, ns, o: ns.disk is Disk.FAILED
         and os.disk is Disk.DISKLESS, "drbd_state.c is_valid_transition: Diskless -> Failed"),
)

CW_FAILED_BY_PEER = Rule(-10, "SS_CW_FAILED_BY_PEER", lambda os, ns, o: False,
                         "drbd_state.c drbd_req_state: the peer refused (got_RqSReply)")


def first_refusal(rules: tuple[Rule, ...], os: DState, ns: DState, opts: Options) -> Rule | None:
    return next((r for r in rules if r.refuses(os, ns, opts)), None)


def valid_state(os: DState, ns: DState, opts: Options) -> Rule | None:
    return first_refusal(STATE_RULES, os, ns, opts)


def valid_soft_transition(os: DState, ns: DState, opts: Options) -> Rule | None:
    return first_refusal(tuple(reversed(SOFT_RULES)), os, ns, opts)


def valid_transition(os: DState, ns: DState, opts: Options) -> Rule | None:
    conn = first_refusal(TRANSITION_RULES[:-1], os, ns, opts)
    return first_refusal(TRANSITION_RULES[-1:], os, ns, opts) or conn


# sanitize_state: the disk range each connection state implies (disk_min, disk_max,
# pdsk_min, pdsk_max); states not listed keep D_DISKLESS..D_UP_TO_DATE / Inconsistent..DUnknown
_RANGES: dict[CS, tuple[Disk, Disk, Disk, Disk]] = {
    **dict.fromkeys((CS.WF_BITMAP_T, CS.PAUSED_SYNC_T, CS.STARTING_SYNC_T, CS.WF_SYNC_UUID,
                     CS.BEHIND), (Disk.INCONSISTENT, Disk.OUTDATED, Disk.UP_TO_DATE,
                                  Disk.UP_TO_DATE)),
    **dict.fromkeys((CS.VERIFY_S, CS.VERIFY_T), (Disk.UP_TO_DATE,) * 4),
    CS.CONNECTED: (Disk.DISKLESS, Disk.UP_TO_DATE, Disk.DISKLESS, Disk.UP_TO_DATE),
    **dict.fromkeys((CS.WF_BITMAP_S, CS.PAUSED_SYNC_S, CS.STARTING_SYNC_S, CS.AHEAD),
                    (Disk.UP_TO_DATE, Disk.UP_TO_DATE, Disk.INCONSISTENT, Disk.CONSISTENT)),
    CS.SYNC_TARGET: (Disk.INCONSISTENT, Disk.INCONSISTENT, Disk.UP_TO_DATE, Disk.UP_TO_DATE),
    CS.SYNC_SOURCE: (Disk.UP_TO_DATE, Disk.UP_TO_DATE, Disk.INCONSISTENT, Disk.INCONSISTENT),
}
_DEFAULT_RANGE = (Disk.DISKLESS, Disk.UP_TO_DATE, Disk.INCONSISTENT, Disk.DUNKNOWN)


def sanitize(os: DState, ns: DState, opts: Options) -> DState:
    """drbd_state.c sanitize_state: the changes a requested state implies. (Its "connection
    breaks down before we finished Negotiating" case needs the exposed-data UUID; the
    simulator applies it in `DrbdResourceSim.negotiation_lost`.)"""
    if ns.conn < CS.CONNECTED:  # no peer: its role is unknown, its disk at most DUnknown
        pdsk = ns.pdsk if Disk.INCONSISTENT <= ns.pdsk <= Disk.DUNKNOWN else Disk.DUNKNOWN
        ns = replace(ns, peer=Role.UNKNOWN, pdsk=pdsk)
    if ns.conn > CS.CONNECTED and (ns.disk <= Disk.FAILED or ns.pdsk <= Disk.FAILED):
        ns = replace(ns, conn=CS.CONNECTED)  # a disk failed/detached: "Resync aborted."
    if CS.CONNECTED <= ns.conn < CS.AHEAD:  # Consistent and Outdated vanish when connected
        up = (Disk.CONSISTENT, Disk.OUTDATED)
        ns = replace(ns, disk=Disk.UP_TO_DATE if ns.disk in up else ns.disk,
                     pdsk=Disk.UP_TO_DATE if ns.pdsk in up else ns.pdsk)
    dmin, dmax, pmin, pmax = _RANGES.get(ns.conn, _DEFAULT_RANGE)
    ns = replace(ns, disk=max(dmin, min(dmax, ns.disk)), pdsk=max(pmin, min(pmax, ns.pdsk)))
    lost = _primary(ns) and ns.conn < CS.CONNECTED and ns.pdsk > Disk.OUTDATED
    was_lost = os.role is Role.PRIMARY and os.conn < CS.CONNECTED and os.pdsk > Disk.OUTDATED
    if fencing_of(os, opts) == "resource-and-stonith" and lost and not was_lost:
        ns = replace(ns, susp_fen=True)  # suspend I/O while the fence-peer handler runs
    return ns
