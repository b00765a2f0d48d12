"""Find the settings the field knows to be dangerous, each with what the real software
does with it (the source it is read from) and what its drill will show."""

from __future__ import annotations

from stackdrill.dangers.model import Danger, DangerCode
from stackdrill.topology import ClusterSpec, DrbdResource, Locking, Topology
from stackdrill.topology.semantic import VXLAN_OVERHEAD


def find_dangers(topology: Topology) -> list[Danger]:
    """Every danger of the topology, in file order (DRBD, LVM, clusters, overlays)."""
    found: list[Danger] = []
    for i, res in enumerate(topology.drbd):
        found += _drbd(f"drbd[{i}]", res)
    found += _volume_groups(topology)
    for i, cluster in enumerate(topology.clusters):
        found += _cluster(f"clusters[{i}]", cluster)
    found += _overlays(topology)
    return found


def dual_primary(res: DrbdResource) -> bool:
    """Both nodes are meant to be Primary at once: allowed, or asked for at start."""
    return res.allow_two_primaries or len(set(res.primary)) > 1


def _drbd(base: str, res: DrbdResource) -> list[Danger]:
    out: list[Danger] = []
    if len(set(res.primary)) > 1 and not res.allow_two_primaries:
        out.append(Danger(
            DangerCode.DRBD_DUAL_PRIMARY_NOT_ALLOWED, f"{base}.allow_two_primaries",
            f"false (primary: {', '.join(res.primary)})",
            "both nodes are to be Primary, but without allow-two-primaries DRBD refuses the "
            "second promotion (drbd_state.c is_valid_state: SS_TWO_PRIMARIES, \"Multiple "
            "primaries not allowed by config\"); that node stays Secondary, its /dev/drbd "
            "cannot be opened (drbd_main.c drbd_open) and the LVs and guests on it do not "
            "come up", res.name,
            f"drbd[{res.name}] fails ({res.primary[1]} stays Secondary), the drbdadm primary "
            f"on {res.primary[1]} is refused, exactly_once fails for guests there"))
    if res.allow_two_primaries and res.protocol.value != "C":
        out.append(Danger(
            DangerCode.DRBD_DUAL_PRIMARY_NOT_PROTOCOL_C, f"{base}.protocol",
            f"{res.protocol.value} (with allow_two_primaries)",
            "DRBD refuses allow-two-primaries with protocol A or B (drbd_nl.c "
            "_check_net_options: ERR_NOT_PROTO_C, \"Protocol C required\"): `drbdadm up` "
            "attaches the disks but the resource never connects, each node runs StandAlone "
            "and nothing written is replicated", res.name,
            f"drbd[{res.name}] fails: both nodes StandAlone, never Connected"))
    if dual_primary(res) and res.fencing == "dont-care":
        out.append(Danger(
            DangerCode.DRBD_DUAL_PRIMARY_FENCING_DONT_CARE, f"{base}.fencing",
            "dont-care (dual-primary)",
            "with fencing dont-care no fence-peer handler runs when the replication link "
            "breaks (drbd_nl.c conn_try_outdate_peer returns at FP_DONT_CARE) and no I/O "
            "is frozen, so both Primaries keep writing apart and DRBD finds a split brain "
            "when the link returns (drbd_receiver.c drbd_sync_handshake)", res.name,
            f"drbd[{res.name}] fails: split brain after a partition of {res.network} (where "
            "no cluster's power fencing shoots a node first)"))
    if res.after_sb_1pri == "discard-secondary":
        out.append(Danger(
            DangerCode.DRBD_AFTER_SB_1PRI_DISCARD_SECONDARY, f"{base}.after_sb_1pri",
            "discard-secondary",
            "after a split brain with one Primary at reconnect DRBD makes the Secondary "
            "SyncTarget (drbd_receiver.c drbd_asb_recover_1p, ASB_DISCARD_SECONDARY): every "
            "write acknowledged on that side during the split is overwritten; flagged "
            "always, since the lab cannot know whether that loss is acceptable", res.name,
            f"drbd[{res.name}] fails where a split brain can happen (fencing dont-care, no "
            f"power fencing): {_second_node(res)} is resynced from the Primary over its own "
            "writes (the report's resync-started counts discarded_blocks)"))
    return out


def _second_node(res: DrbdResource) -> str:
    """The node not Primary first: the one a split-brain drill reboots and demotes."""
    first = res.primary[0] if res.primary else res.nodes[0]
    return next((n for n in res.nodes if n != first), first)


def _volume_groups(topology: Topology) -> list[Danger]:
    out: list[Danger] = []
    drbd = {r.name: r for r in topology.drbd}
    for i, vg in enumerate(topology.volume_groups):
        res = drbd.get(vg.pv.drbd or "")
        if res is None or not dual_primary(res):
            continue
        if vg.locking in (Locking.LOCAL, Locking.NONE):
            out.append(Danger(
                DangerCode.LVM_LOCAL_LOCKING_ON_SHARED_VG, f"volume_groups[{i}].locking",
                f"{vg.locking.value} (on dual-primary {res.name})",
                "lvm2's locking_type 1 is \"local file-based locking\" (0: none; lvm2 "
                "lib/config/config_settings.h global/locking_type): it serialises commands "
                "on one host only, so two hosts changing the metadata of a VG on shared "
                "storage each write their own view; one change is lost while its LV stays "
                "active over extents the other host gives away", vg.name,
                f"lvm_consistent[{vg.name}] fails: the VG's metadata differs between the "
                "hosts or an LV's extents overlap another's"))
    return out


def _cluster(base: str, cluster: ClusterSpec) -> list[Danger]:
    """votequorum(5): quorum is 50% of the expected votes + 1; two_node: 1 sets it to 1."""
    if len(cluster.nodes) != 2 or cluster.two_node:
        return []
    votes = {n: cluster.votes.get(n, 1) for n in cluster.nodes}
    expected = cluster.expected_votes or sum(votes.values())
    quorum = expected // 2 + 1
    alone = [n for n in cluster.nodes if votes[n] < quorum]
    if not alone:
        return []
    survivor = alone[0]
    lost = next(n for n in cluster.nodes if n != survivor)
    return [Danger(
        DangerCode.COROSYNC_TWO_NODES_WITHOUT_TWO_NODE, f"{base}.two_node",
        f"false (2 nodes, expected_votes {expected}, quorum {quorum})",
        "votequorum(5): quorum is 50% of the expected votes + 1, so in a two-node cluster "
        "without two_node: 1 the survivor of a node loss is not quorate and stops cluster "
        "services (DLM, clustered LVM, fencing); two_node: 1 sets quorum to 1 (with "
        "wait_for_all)", cluster.name,
        f"quorum[{cluster.name}] fails: {survivor} is not quorate once {lost} is lost")]


def _overlays(topology: Topology) -> list[Danger]:
    out: list[Danger] = []
    nets = {n.name: n for n in topology.networks}
    for i, ov in enumerate(topology.overlays):
        net = nets.get(ov.network)
        if net is None or ov.mtu <= net.mtu - VXLAN_OVERHEAD:
            continue
        out.append(Danger(
            DangerCode.OVERLAY_MTU_OVER_UNDERLAY, f"overlays[{i}].mtu",
            f"{ov.mtu} (underlay {net.name} MTU {net.mtu} - {VXLAN_OVERHEAD} = "
            f"{net.mtu - VXLAN_OVERHEAD})",
            "guests and bridges take the overlay's MTU, but the VXLAN device carries at "
            "most the underlay's minus 50 bytes of encapsulation (bound to its underlay "
            "device it refuses or, on older kernels, clamps a larger MTU: drivers/net/vxlan "
            "vxlan_config_apply), so full-size frames are dropped at the bridge without an "
            "ICMP (br_forward.c is_skb_forwardable): small packets pass, large ones vanish, "
            "a path-MTU black hole", ov.name,
            f"overlay fails: a path-MTU black hole, {ov.mtu}-byte frames between hosts on "
            f"{ov.name} dropped silently"))
    return out
