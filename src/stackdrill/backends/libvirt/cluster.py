"""The cluster stack in the guests: corosync (votequorum), dlm_controld, lvmlockd, shared VGs.

bookworm's lvm2 has no clvmd; lvmlockd with dlm is its successor (the seed's `locking_type 3`).
A shared VG shows `s` as the 6th `vg_attr` character where clvmd showed `c`. Measured under
TCG (MACHINE-FACTS): 2-node quorum ~5 s, dlm ready ~4 s later, shared VG + lock start ~8 s.
There is no systemd in the guests, so the daemons are started directly. dlm_controld fences
as the cluster's `fencing` says: `power` through the lab's fence agent (fencing.py), `manual`
by waiting for an acknowledgement, `none` not at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stackdrill.api import QuorumStatus
from stackdrill.backends.libvirt import fencing
from stackdrill.topology import ClusterFencing, ClusterSpec, Locking, Topology, VolumeGroup

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

# The image's lvm.conf (lab/images/build.py) already has the guest settings; clustered
# VGs only switch lvmlockd on, so provisioning's filter changes are kept.
ENABLE_LVMLOCKD = "sed -i 's/use_lvmlockd = 0/use_lvmlockd = 1/' /etc/lvm/lvm.conf"


def corosync_conf(topology: Topology, cluster: ClusterSpec) -> str:
    net = topology.network(cluster.network)
    nodes = "".join(
        f"  node {{\n    ring0_addr: {net.addresses[host]}\n    name: {host}\n"
        f"    nodeid: {index}\n    quorum_votes: {cluster.votes.get(host, 1)}\n  }}\n"
        for index, host in enumerate(cluster.nodes, start=1)
    )
    quorum = ["  provider: corosync_votequorum"]
    if cluster.two_node:
        quorum.append("  two_node: 1")
    if cluster.expected_votes is not None:
        quorum.append(f"  expected_votes: {cluster.expected_votes}")
    if cluster.wait_for_all is not None:
        quorum.append(f"  wait_for_all: {int(cluster.wait_for_all)}")
    return (
        "totem {\n  version: 2\n"
        f"  cluster_name: {cluster.name}\n  transport: knet\n  token: {cluster.token_ms}\n"
        "  crypto_cipher: none\n  crypto_hash: none\n}\n"
        f"nodelist {{\n{nodes}}}\n"
        "quorum {\n" + "\n".join(quorum) + "\n}\n"
        "logging {\n  to_logfile: yes\n  logfile: /var/log/corosync.log\n"
        "  to_syslog: no\n  to_stderr: no\n  timestamp: on\n}\n"
    )


def dlm_controld_command(cluster: ClusterSpec) -> str:
    """dlm_controld as the cluster's fencing says. `power`: fencing on with the lab's agent
    as its `fence_all` device (fencing.install_command writes dlm.conf). `manual`: fencing
    on and no fence device configured, so after losing a member the DLM waits until
    `dlm_tool fence_ack <nodeid>` (fence_ack_manual), as the simulator models it. `none`:
    no DLM fencing at all."""
    if cluster.fencing in (ClusterFencing.MANUAL, ClusterFencing.POWER):
        return "dlm_controld"
    return "dlm_controld --enable_fencing 0"


def fencing_setup(topology: Topology, cluster: ClusterSpec, host: str) -> str:
    """What a node needs before its dlm_controld starts: the fence agent and dlm.conf
    where the cluster fences by power, no fence device otherwise."""
    if cluster.fencing is ClusterFencing.POWER:
        return fencing.install_command(topology, host)
    return "rm -f /etc/dlm/dlm.conf"


def fence_ack_command(cluster: ClusterSpec, victim: str) -> str:
    """The operator's acknowledgement that `victim` is fenced (corosync node ids are the
    1-based positions in the cluster's node list, as corosync_conf writes them)."""
    return f"dlm_tool fence_ack {cluster.nodes.index(victim) + 1}"


# Where dlm_controld writes the cluster's name once it has joined corosync; lvmlockd reads it
# to decide whether the lock manager runs at all (lvm2 daemons/lvmlockd/lvmlockd-dlm.c,
# read_cluster_name / lm_is_running_dlm): until it is there, `vgchange --lock-start` says
# "lock manager dlm is not running" and `vgcreate --shared` cannot start the global
# lockspace ("Global lock failed: check that global lockspace is started"), although
# `dlm_tool status` already answers.
DLM_CLUSTER_NAME_PATH = "/sys/kernel/config/dlm/cluster/cluster_name"
READY_TRIES = 120  # x 0.5 s: the bound on waiting for the stack to be usable


def ready_wait(cluster_name_path: str = DLM_CLUSTER_NAME_PATH, lvmlockd: bool = True) -> str:
    """A bounded wait until the node's stack is usable, not only started: dlm_controld
    answers (systemd's Type=notify readiness, which `systemctl start` waits for), it has
    written the cluster name lvmlockd checks, and (where the lab runs it) lvmlockd answers."""
    locks = "lvmlockctl --info >/dev/null 2>&1 && " if lvmlockd else ""
    return (f"for i in $(seq {READY_TRIES}); do dlm_tool status >/dev/null 2>&1 && "
            f"[ -s {cluster_name_path} ] && {locks}exit 0; "
            "sleep 0.5; done; echo 'the cluster stack did not become ready "
            f"(dlm_tool status, {cluster_name_path}{', lvmlockctl --info' if lvmlockd else ''})'"
            " >&2; exit 1")


# `corosync` returns once it has forked, before its IPC answers; a dlm_controld started then
# exits at once ("corosync cfg init error 2", seen on a guest booting under load), so wait
# as systemd does for corosync.service (Type=notify) before starting dlm.service.
COROSYNC_READY = ("(for i in $(seq 60); do corosync-cfgtool -s >/dev/null 2>&1 && exit 0; "
                  "sleep 0.5; done; echo 'corosync did not answer corosync-cfgtool -s' >&2; "
                  "exit 1)")

LVMLOCKD_START = "lvmlockd -g dlm"  # lvmlockd with the DLM as its lock manager


def start_node(dlm: str, lvmlockd: bool) -> str:
    """A drill's `cluster start` on one node: the daemons the lab build started (lvmlockd
    keeps running across a stack stop), each only if it is not running, then `ready_wait`."""
    steps = ["(pgrep -x corosync >/dev/null || corosync)", COROSYNC_READY,
             f"(pgrep -x dlm_controld >/dev/null || {dlm})"]
    if lvmlockd:
        steps.append(f"(pgrep -x lvmlockd >/dev/null || {LVMLOCKD_START})")
    return " && ".join([*steps, ready_wait(lvmlockd=lvmlockd)])


# `cluster stop`: dlm_controld first (SIGTERM; it leaves its CPG with cpg_leave, so the
# others do not fence it, and ignores the signal while it has lockspaces: main.c "shutdown
# ignored, active lockspaces"), then corosync (`-H`: a leave message, totemsrp_finalize).
STOP_NODE = ("pkill -TERM -x dlm_controld; "
             "for i in $(seq 50); do pgrep -x dlm_controld >/dev/null || break; sleep 0.2; done; "
             "if pgrep -x dlm_controld >/dev/null; then "
             "echo 'dlm_controld: shutdown ignored, active lockspaces' >&2; exit 1; fi; "
             "pgrep -x corosync >/dev/null || exit 0; corosync-cfgtool -H --force")


def stack_command(cluster: ClusterSpec, op: str, lvmlockd: bool = True) -> str:
    """The shell line that starts or stops the cluster stack on one node (no systemd in
    the guests: what `systemctl start corosync dlm` / `stop dlm corosync` would run)."""
    if op == "start":
        return start_node(dlm_controld_command(cluster), lvmlockd)
    if op == "stop":
        return STOP_NODE
    raise ValueError(f"no stack operation {op!r}")


BOOT_STACK_SCRIPT = "/run/stackdrill/stack-start.sh"
BOOT_STACK_LOG = "/var/log/stackdrill-stack-start.log"


def needs_lvmlockd(topology: Topology) -> bool:
    """lvmlockd runs (and lvm.conf uses it) where a volume group needs cluster locking; a
    cluster that only fences runs corosync and dlm_controld."""
    return any(vg.locking in (Locking.CLUSTERED, Locking.LVMLOCKD)
               for vg in topology.volume_groups)


def stack_needed(topology: Topology) -> bool:
    """The lab runs the cluster stack when a volume group needs cluster locking or a
    cluster fences by power (dlm_controld is what fences)."""
    return needs_lvmlockd(topology) or bool(fencing.fenced_hosts(topology))


def boot_command(topology: Topology, host: str) -> str | None:
    """What `host`'s init starts of the cluster stack when it powers on, or None: the units
    an operator's node has enabled (corosync, dlm, lvmlockd) start whatever was done
    before, as the simulator's ClusterStacks.booted; the configuration is the lab
    build's, written again (a power cut may lose what the guest had not flushed). The VG
    lockspaces are not started: the DRBD device comes up Secondary, so lvmlocks' boot-time
    `vgchange --lock-start` finds no shared VG; the storage driver starts one where it
    promotes and activates. The start runs detached, as systemd starts these units beside
    the others: the compute service's start does not wait for them (its log says why it
    failed, if it does: BOOT_STACK_LOG)."""
    specs = [c for c in topology.clusters if host in c.nodes]
    if not specs or not stack_needed(topology):
        return None
    cluster = specs[0]  # corosync runs one ring per node
    return (f"mkdir -p /etc/corosync /var/log /run/dlm /run/stackdrill && "
            f"cat > /etc/corosync/corosync.conf <<'EOF'\n{corosync_conf(topology, cluster)}EOF\n"
            f"{fencing_setup(topology, cluster, host)} && "
            f"{_use_lvmlockd(topology)}cat > {BOOT_STACK_SCRIPT} <<'EOF'\n"
            f"{stack_command(cluster, 'start', needs_lvmlockd(topology))}\nEOF\n"
            f"setsid sh {BOOT_STACK_SCRIPT} >{BOOT_STACK_LOG} 2>&1 </dev/null &")


def start_stack(lab: LibvirtLab, cluster: ClusterSpec) -> None:
    """corosync, then dlm_controld, then lvmlockd (dlm), on every node."""
    conf = corosync_conf(lab.topology, cluster)
    for host in cluster.nodes:
        lab.run(host, "mkdir -p /etc/corosync /var/log /run/dlm && "
                      f"cat > /etc/corosync/corosync.conf <<'EOF'\n{conf}EOF").check()
        lab.run(host, "corosync").check()
        lab.log("corosync-start", cluster=cluster.name, host=host)
    locks = needs_lvmlockd(lab.topology)
    for host in cluster.nodes:
        lab.run(host, f"{fencing_setup(lab.topology, cluster, host)} && "
                      f"{_use_lvmlockd(lab.topology)}true").check()
        lab.run(host, f"{COROSYNC_READY} && {dlm_controld_command(cluster)}"
                      f"{' && ' + LVMLOCKD_START if locks else ''}", timeout=60).check()
        lab.log("dlm-lvmlockd-start" if locks else "dlm-start", cluster=cluster.name,
                host=host)


def _use_lvmlockd(topology: Topology) -> str:
    """The lvm.conf switch, followed by `&&`, where lvmlockd runs; nothing elsewhere."""
    return f"{ENABLE_LVMLOCKD} && " if needs_lvmlockd(topology) else ""


def wait_usable(lab: LibvirtLab, cluster: ClusterSpec) -> None:
    """Every node's stack usable (`ready_wait`), before a shared VG is created."""
    for host in cluster.nodes:
        lab.run(host, ready_wait(lvmlockd=needs_lvmlockd(lab.topology)),
                timeout=READY_TRIES * 0.5 + 30).check()


def parse_quorumtool(text: str) -> QuorumStatus:
    """`corosync-quorumtool -s` output as the fields Observation.quorum carries per host."""
    fields: dict[str, str] = {}
    members: list[str] = []
    in_members = False
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not in_members:
            fields[key.strip()] = value.strip()
        parts = line.split()
        if parts[:3] == ["Nodeid", "Votes", "Name"]:
            in_members = True
        elif in_members and len(parts) >= 3 and parts[0].isdigit():
            members.append(parts[2])
    quorum = (fields.get("Quorum", "").split() or [""])[0]  # "1  Activity blocked"
    return QuorumStatus(
        quorate=fields.get("Quorate") == "Yes",
        members=tuple(sorted(members)),
        votes=int(fields.get("Total votes", "0") or 0),
        expected_votes=int(fields.get("Expected votes", "0") or 0),
        quorum=int(quorum) if quorum.isdigit() else None,
        wait_for_all="WaitForAll" in fields.get("Flags", "").split(),
        two_node="2Node" in fields.get("Flags", "").split(),
    )


def quorum(lab: LibvirtLab, host: str) -> QuorumStatus:
    return parse_quorumtool(lab.run(host, "corosync-quorumtool -s", timeout=30).stdout)


def create_shared_vg(lab: LibvirtLab, vg: VolumeGroup, pv: str, nodes: tuple[str, ...]) -> None:
    """`vgcreate --shared` on the first node, then start the VG's lockspace on every node."""
    if vg.locking is not Locking.LVMLOCKD and vg.locking is not Locking.CLUSTERED:
        raise ValueError(f"{vg.name} is not a clustered volume group")
    first = nodes[0]
    lab.run(first, f"pvcreate -ff -y {pv} && vgcreate --shared -s {vg.extent_mb}M {vg.name} {pv}",
            timeout=120).check()
    for host in nodes:
        lab.run(host, f"vgchange --lock-start {vg.name}", timeout=120).check()
    lab.log("shared-vg", vg=vg.name, nodes=",".join(nodes))


def vg_attr(lab: LibvirtLab, host: str, vg: str) -> str:
    return lab.run(host, f"vgs --noheadings -o vg_attr {vg}").check().stdout.strip()
