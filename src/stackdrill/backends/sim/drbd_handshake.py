"""The DRBD 8.4 sync handshake as a pure function: who syncs from whom, or split brain.

Follows drbd_receiver.c: `drbd_uuid_compare` (rules 10..100 over current,
bitmap and history UUIDs), `drbd_asb_recover_0p/1p/2p` (the after-sb-*
policies), and `drbd_sync_handshake` (disk-state override, discard-my-data,
"I shall become SyncSource/SyncTarget" refusals, which only the side that would
sync refuses: the kernel checks `hg` against its own role and disk). Kept free of simulation
state so every rule can be tested on its own.

Result convention (as in the kernel, from side `a`'s point of view):
 2 a is SyncSource, full sync;  1 a is SyncSource, bitmap sync;  0 no sync;
-1 a is SyncTarget (bitmap); -2 a is SyncTarget (full);
 100 split brain (auto recovery possible); -100 split brain (disconnect);
-1000 unrelated data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stackdrill.backends.sim.drbd_model import UUID_JUST_CREATED, Disk, Role, Uuids


@dataclass(frozen=True)
class Side:
    """What one node brings to the handshake (its meta data and state)."""

    name: str
    uuids: Uuids
    role: Role
    disk: Disk
    crashed_primary: bool = False
    changes: int = 0  # bits set in its bitmap since the split (comm_bm_set)
    discard_my_data: bool = False
    resolve_conflicts: bool = False  # connection tie-breaker (RESOLVE_CONFLICTS)
    state_disk: Disk | None = None  # device->state.disk where it is not `disk` (Negotiating)


@dataclass(frozen=True)
class Policies:
    after_sb_0pri: str = "disconnect"
    after_sb_1pri: str = "disconnect"
    after_sb_2pri: str = "disconnect"
    rr_conflict: str = "disconnect"
    two_primaries: bool = False  # net allow-two-primaries


@dataclass
class Decision:
    hg: int  # from a's point of view, see module docstring
    rule: int
    # the sides whose drbd_sync_handshake returns C_MASK: each goes StandAlone, a peer that
    # did not refuse only loses the connection and keeps trying (WFConnection)
    refused_by: tuple[str, ...] = ()
    split_brain: bool = False  # split brain was detected (resolved or not)
    resolved_by: str | None = None  # policy name or "discard-my-data"
    messages: list[str] = field(default_factory=list)

    @property
    def drop(self) -> bool:
        """The connection is not established."""
        return bool(self.refused_by)


def _m(value: int) -> int:
    return value & ~1


# One table on purpose: drbd_receiver.c drbd_uuid_compare() is a ladder of numbered
# rules (10..100) tried in order, the first match wins; kept as that ladder, rule by rule,
# so it can be read against the kernel source. Split up, the order would be hidden.
def uuid_compare(a: Side, b: Side) -> tuple[int, int]:  # noqa: C901, PLR0912
    """drbd_uuid_compare(), without the protocol-version and lost-sync-UUID corrections."""
    self_c, peer_c = _m(a.uuids.current), _m(b.uuids.current)
    if self_c == UUID_JUST_CREATED and peer_c == UUID_JUST_CREATED:
        return 0, 10
    if self_c in (UUID_JUST_CREATED, 0) and peer_c != UUID_JUST_CREATED:
        return -2, 20
    if self_c != UUID_JUST_CREATED and peer_c in (UUID_JUST_CREATED, 0):
        return 2, 30
    if self_c == peer_c:
        if b.uuids.bitmap == 0 and a.uuids.bitmap != 0:
            return 1, 36  # was SyncSource, peer failed to write sync_uuid
        if a.uuids.bitmap == 0 and b.uuids.bitmap != 0:
            return -1, 37
        rct = (1 if a.crashed_primary else 0) + (2 if b.crashed_primary else 0)
        if rct == 0:
            return 0, 40  # only a replication link hiccup
        if a.role is Role.PRIMARY or b.role is Role.PRIMARY:
            if a.role is Role.PRIMARY and b.role is Role.PRIMARY:
                return -100, 41
            return (1 if a.role is Role.PRIMARY else -1), 41
        if rct == 3:
            return (-1 if a.resolve_conflicts else 1), 40
        return (1 if rct == 1 else -1), 40
    if self_c == _m(b.uuids.bitmap):
        return -1, 50
    if any(self_c == _m(h) for h in b.uuids.history):
        return -2, 60
    if _m(a.uuids.bitmap) == peer_c:
        return 1, 70
    if any(_m(h) == peer_c for h in a.uuids.history):
        return 2, 80
    if _m(a.uuids.bitmap) == _m(b.uuids.bitmap) and _m(a.uuids.bitmap) != 0:
        return 100, 90
    for h in a.uuids.history:
        if h and any(_m(h) == _m(p) for p in b.uuids.history if p):
            return -100, 100
    return -1000, 100


def recover_0p(a: Side, b: Side, policy: str, log: list[str]) -> int:
    """drbd_asb_recover_0p(): the after-sb-0pri algorithm (also used by 1pri/2pri)."""
    self_pri, peer_pri = a.uuids.bitmap & 1, b.uuids.bitmap & 1
    ch_self, ch_peer = a.changes, b.changes
    tie = -1 if a.resolve_conflicts else 1
    if policy == "disconnect":
        return -100
    if policy in ("discard-younger-primary", "discard-older-primary"):
        younger = policy == "discard-younger-primary"
        if self_pri == 0 and peer_pri == 1:
            return -1 if younger else 1
        if self_pri == 1 and peer_pri == 0:
            return 1 if younger else -1
        log.append("Discard younger/older primary did not find a decision\n"
                   "Using discard-least-changes instead")
    if policy in ("discard-zero-changes", "discard-younger-primary",
                  "discard-older-primary", "discard-least-changes"):
        if policy != "discard-least-changes":
            if ch_peer == 0 and ch_self == 0:
                return tie
            if ch_peer == 0:
                return 1
            if ch_self == 0:
                return -1
            if policy == "discard-zero-changes":
                return -100
        if ch_self < ch_peer:
            return -1
        if ch_self > ch_peer:
            return 1
        return tie
    return -100


def recover_1p(a: Side, b: Side, pol: Policies, log: list[str]) -> int:
    """drbd_asb_recover_1p(): one side is Primary."""
    if pol.after_sb_1pri == "consensus":
        hg = recover_0p(a, b, pol.after_sb_0pri, log)
        if hg == -1 and a.role is Role.SECONDARY:
            return hg
        if hg == 1 and a.role is Role.PRIMARY:
            return hg
        return -100
    if pol.after_sb_1pri == "violently-as0p":
        return recover_0p(a, b, pol.after_sb_0pri, log)
    if pol.after_sb_1pri == "discard-secondary":
        return 1 if a.role is Role.PRIMARY else -1
    return -100


def recover_2p(a: Side, b: Side, pol: Policies, log: list[str]) -> int:
    """drbd_asb_recover_2p(): both sides are Primary."""
    if pol.after_sb_2pri == "violently-as0p":
        return recover_0p(a, b, pol.after_sb_0pri, log)
    return -100


def decide(a: Side, b: Side, pol: Policies) -> Decision:
    """The handshake seen from `a` (the kernel runs it on both sides, symmetrically), and
    the state change that follows it."""
    return _two_primaries(a, b, pol, _sync_handshake(a, b, pol))


# One table on purpose: drbd_receiver.c drbd_sync_handshake() runs its steps in this
# order (uuid_compare, the disk-state override, split-brain auto recovery, discard-my-data,
# the SyncSource/SyncTarget refusals); kept as one function so it reads against the kernel.
def _sync_handshake(a: Side, b: Side, pol: Policies) -> Decision:  # noqa: C901, PLR0912
    """drbd_sync_handshake() seen from `a`."""
    hg, rule = uuid_compare(a, b)
    d = Decision(hg=hg, rule=rule)
    d.messages.append(f"uuid_compare()={hg} by rule {rule}")
    if hg == -1000:
        d.messages.append("Unrelated data, aborting!")
        d.refused_by = (a.name, b.name)
        return d
    if (a.disk is Disk.INCONSISTENT and b.disk > Disk.INCONSISTENT) or (
        b.disk is Disk.INCONSISTENT and a.disk > Disk.INCONSISTENT
    ):
        full = hg == -100 or abs(hg) == 2
        hg = 1 if a.disk > Disk.INCONSISTENT else -1
        hg = hg * 2 if full else hg
        d.messages.append(f"Becoming sync {'source' if hg > 0 else 'target'} due to disk states.")
    if abs(hg) == 100:
        d.split_brain = True
    if hg == 100:
        pcount = (a.role is Role.PRIMARY) + (b.role is Role.PRIMARY)
        if pcount == 0:
            hg = recover_0p(a, b, pol.after_sb_0pri, d.messages)
        elif pcount == 1:
            hg = recover_1p(a, b, pol, d.messages)
        else:
            hg = recover_2p(a, b, pol, d.messages)
        if abs(hg) < 100:
            d.resolved_by = (pol.after_sb_0pri, pol.after_sb_1pri, pol.after_sb_2pri)[pcount]
            d.messages.append(f"Split-Brain detected, {pcount} primaries, automatically solved."
                              f" Sync from {'peer' if hg < 0 else 'this'} node")
    if hg == -100:
        if a.discard_my_data and not b.discard_my_data:
            hg = -1
        elif b.discard_my_data and not a.discard_my_data:
            hg = 1
        if abs(hg) < 100:
            d.resolved_by = "discard-my-data"
            d.messages.append("Split-Brain detected, manually solved. "
                              f"Sync from {'peer' if hg < 0 else 'this'} node")
    d.hg = hg
    if hg == -100:
        d.messages.append("Split-Brain detected but unresolved, dropping connection!")
        d.refused_by = (a.name, b.name)
        return d
    source, target = (a, b) if hg > 0 else (b, a)
    if hg != 0 and source.disk <= Disk.INCONSISTENT:
        d.messages.append(f"{source.name}: I shall become SyncSource, but I am inconsistent!")
        d.refused_by = (source.name,)
        return d
    # "by intention we do not use mydisk here": a disk being attached is D_NEGOTIATING
    state_disk = target.disk if target.state_disk is None else target.state_disk
    if hg != 0 and target.role is Role.PRIMARY and state_disk >= Disk.CONSISTENT:
        if pol.rr_conflict != "violently":
            d.messages.append(f"{target.name}: I shall become SyncTarget, but I am primary!")
            d.refused_by = (target.name,)
            return d
        d.messages.append(f"{target.name}: Becoming SyncTarget, violating the stable-data"
                          " assumption")
    return d


def _two_primaries(a: Side, b: Side, pol: Policies, d: Decision) -> Decision:
    """After the handshake, receive_state applies the new state (peer role included) with
    _drbd_set_state: is_valid_state refuses Primary/Primary without allow-two-primaries
    (SS_TWO_PRIMARIES), so each side still in the handshake disconnects too."""
    if pol.two_primaries or a.role is not Role.PRIMARY or b.role is not Role.PRIMARY:
        return d
    for side in (a, b):
        if side.name not in d.refused_by:
            d.messages.append(f"{side.name}: State change failed: Multiple primaries not "
                              "allowed by config")
            d.refused_by = (*d.refused_by, side.name)
    return d
