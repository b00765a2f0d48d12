"""DRBD, corosync and LVM as the libvirt backend configures and reads them in the guests.

The samples below were captured from the backend's own guests (Debian bookworm, kernel 6.1,
DRBD 8.4.11, corosync 3.1.7, lvm2 2.03.16 with lvmlockd/dlm) during real drills on this
machine; the parsers must read them the way an operator reads the same screens.
"""

from __future__ import annotations

import subprocess

import pytest

pytest.importorskip("libvirt", reason="libvirt-python is not installed")
from libvirt_support import clvm_pair, two_node

from stackdrill.api import DrbdNodeStatus, QuorumStatus
from stackdrill.backends.libvirt.cluster import (
    corosync_conf,
    dlm_controld_command,
    fence_ack_command,
    parse_quorumtool,
    stack_command,
)
from stackdrill.backends.libvirt.drbd import (
    FENCE_PEER,
    POWER_DIR,
    fence_peer_script,
    parse_proc_drbd,
    resource_config,
)
from stackdrill.topology import ClusterFencing

SYNCING = """\
version: 8.4.11 (api:1/proto:86-101)
srcversion: F73C670A7EC572DB9CF3E5B
 0: cs:SyncSource ro:Primary/Primary ds:UpToDate/Inconsistent C r-----
    ns:14336 nr:0 dw:0 dr:14336 al:8 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:51160
	[====>...............] sync'ed: 25.0% (51160/65496)K
	finish: 0:00:03 speed: 14,336 (14,336) K/sec
"""

CONNECTED_DUAL_PRIMARY = """\
version: 8.4.11 (api:1/proto:86-101)
srcversion: F73C670A7EC572DB9CF3E5B
 0: cs:Connected ro:Primary/Primary ds:UpToDate/UpToDate C r-----
    ns:65496 nr:0 dw:0 dr:65496 al:8 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0
"""

WF_CONNECTION = """\
version: 8.4.11 (api:1/proto:86-101)
srcversion: F73C670A7EC572DB9CF3E5B
 0: cs:WFConnection ro:Primary/Unknown ds:UpToDate/DUnknown C r-----
    ns:66051 nr:0 dw:1579 dr:69464 al:10 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:1024
"""

STANDALONE_AFTER_SPLIT_BRAIN = """\
version: 8.4.11 (api:1/proto:86-101)
srcversion: F73C670A7EC572DB9CF3E5B
 0: cs:StandAlone ro:Primary/Unknown ds:UpToDate/DUnknown   r-----
    ns:66051 nr:0 dw:1579 dr:69464 al:10 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:1024
"""

QUORUM_ONE_OF_TWO = """\
Quorum information
------------------
Date:             Wed Nov 25 15:43:22 2026
Quorum provider:  corosync_votequorum
Nodes:            1
Node ID:          1
Ring ID:          1.d
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   2
Highest expected: 2
Total votes:      1
Quorum:           1
Flags:            2Node Quorate WaitForAll

Membership information
----------------------
    Nodeid      Votes Name
         1          1 alice (local)
"""


QUORUM_TWO = """\
Quorum information
------------------
Quorum provider:  corosync_votequorum
Nodes:            2
Node ID:          1
Quorate:          Yes

Votequorum information
----------------------
Expected votes:   2
Highest expected: 2
Total votes:      2
Quorum:           1
Flags:            2Node Quorate WaitForAll

Membership information
----------------------
    Nodeid      Votes Name
         1          1 alice (local)
         2          1 bob
"""


def test_proc_drbd_during_initial_sync() -> None:
    """8.4 /proc/drbd: cs (connection), ro (roles), ds (disk states), oos in KiB."""
    assert parse_proc_drbd(SYNCING, 0) == DrbdNodeStatus(
        role="Primary", peer_role="Primary", disk="UpToDate", peer_disk="Inconsistent",
        connection="SyncSource", out_of_sync_kb=51160)


def test_proc_drbd_connected_and_disconnected() -> None:
    """While the peer is unreachable the primary waits (WFConnection), the peer's disk is
    unknown and writes made meanwhile are counted out of sync."""
    assert parse_proc_drbd(CONNECTED_DUAL_PRIMARY, 0).connection == "Connected"
    assert parse_proc_drbd(CONNECTED_DUAL_PRIMARY, 0).out_of_sync_kb == 0
    wf = parse_proc_drbd(WF_CONNECTION, 0)
    assert wf is not None
    assert (wf.connection, wf.peer_role, wf.peer_disk, wf.out_of_sync_kb) == (
        "WFConnection", "Unknown", "DUnknown", 1024)


def test_proc_drbd_standalone_after_split_brain_has_no_protocol_column() -> None:
    """After 'Split-Brain detected but unresolved, dropping connection!' DRBD is StandAlone,
    and 8.4 prints no protocol letter in that state."""
    state = parse_proc_drbd(STANDALONE_AFTER_SPLIT_BRAIN, 0)
    assert state is not None and state.connection == "StandAlone"
    other = parse_proc_drbd(STANDALONE_AFTER_SPLIT_BRAIN, 1)  # a minor never brought up
    assert other is not None and other.role == other.connection == "Unconfigured"


def test_resource_file_uses_84_syntax_and_topology_values() -> None:
    topo = two_node()
    res = topo.drbd_resource("r0")
    text = resource_config(topo, res, {"alice": "/dev/vdb", "bob": "/dev/vdb"})
    assert "protocol C;" in text
    assert "on alice {" in text and "address 10.60.0.1:7788;" in text
    assert "disk /dev/vdb;" in text and "meta-disk internal;" in text
    assert "on-io-error detach;" in text
    assert "allow-two-primaries" not in text
    for option in ("ping-int 10;", "ping-timeout 5;", "timeout 60;", "ko-count 7;",
                   "connect-int 10;"):  # the sim's peer-loss timing, same numbers
        assert option in text
    dual = clvm_pair()
    text = resource_config(dual, dual.drbd_resource("r0"), {"alice": "/dev/vdb", "bob": "/dev/vdb"})
    assert "allow-two-primaries yes;" in text
    assert "after-sb-1pri discard-secondary;" in text
    assert text.count("{") == text.count("}")


def test_resource_file_carries_the_topologys_resync_rate_in_kib() -> None:
    """resync_rate_mbit is the simulator's resync speed; the guests must resync at the same
    rate, in drbd.conf's unit (KiB/s): 16 Mbit/s is 1953 KiB/s, the default 800 Mbit/s
    97656 KiB/s (the file once said 100M whatever the topology)."""
    topo = two_node()
    res = topo.drbd_resource("r0").model_copy(update={"resync_rate_mbit": 16.0})
    text = resource_config(topo, res, {"alice": "/dev/vdb", "bob": "/dev/vdb"})
    assert "resync-rate 1953k;" in text and "c-plan-ahead 0;" in text
    default = resource_config(topo, topo.drbd_resource("r0"), {"alice": "/dev/vdb",
                                                               "bob": "/dev/vdb"})
    assert "resync-rate 97656k;" in default


def test_quorumtool_two_members_and_one_left() -> None:
    """two_node: a lone survivor keeps quorum (votequorum's 2Node flag), which is why a
    two-node cluster needs fencing against split brain."""
    both = parse_quorumtool(QUORUM_TWO)
    assert both.quorate and both.members == ("alice", "bob")
    assert both.votes == 2
    one = parse_quorumtool(QUORUM_ONE_OF_TWO)
    assert one.quorate and one.members == ("alice",)
    assert one.two_node
    assert parse_quorumtool("") == QuorumStatus(quorate=False, members=(), votes=0,
                                                expected_votes=0)


def test_corosync_conf_from_the_cluster_spec() -> None:
    topo = clvm_pair()
    text = corosync_conf(topo, topo.clusters[0])
    assert "cluster_name: pair" in text
    assert "ring0_addr: 10.60.0.1" in text and "ring0_addr: 10.60.0.2" in text
    assert "two_node: 1" in text and "expected_votes: 1" in text
    assert "provider: corosync_votequorum" in text
    assert text.count("{") == text.count("}")


def test_a_device_that_is_down_reads_unconfigured_as_drbdadm_says() -> None:
    """After `drbdadm down` (or a reboot before `up`) the minor reads cs:Unconfigured; the
    simulator calls that state the same, so the two backends' summaries compare."""
    text = "version: 8.4.11 (api:1/proto:86-101)\n 0: cs:Unconfigured\n"
    down = parse_proc_drbd(text, 0)
    assert down is not None and not down.running
    assert (down.role, down.peer_role, down.disk, down.peer_disk, down.connection) == (
        "Unconfigured", "Unknown", "Unconfigured", "DUnknown", "Unconfigured")
    assert parse_proc_drbd("cat: /proc/drbd: No such file or directory\n", 0) is None


def test_fence_peer_handler_reports_the_peer_fenced_only_when_it_is_off() -> None:
    """Resource-level fencing needs a fence-peer handler, or DRBD refuses to promote the
    survivor ('peer is not outdated'); ours answers 7 (peer stonithed) only when the
    mirrored power state of the peer is off, and 1 (refuse) otherwise."""
    topo = two_node()
    res = topo.drbd_resource("r0").model_copy(update={"fencing": "resource-only"})
    text = resource_config(topo, res, {"alice": "/dev/vdb", "bob": "/dev/vdb"})
    assert f'fence-peer "{FENCE_PEER}";' in text
    assert text.count("{") == text.count("}")
    script = fence_peer_script(topo, "alice")
    assert "r0) peer=bob ;;" in script
    assert f'[ "$(cat {POWER_DIR}/$peer 2>/dev/null)" = off ] && exit 7' in script
    assert script.rstrip().endswith("exit 1")
    plain = resource_config(topo, topo.drbd_resource("r0"), {"alice": "/dev/vdb",
                                                             "bob": "/dev/vdb"})
    assert "fence-peer" not in plain  # fencing dont-care: DRBD never asks


def test_manual_fencing_makes_the_dlm_wait_for_an_acknowledgement() -> None:
    """fencing: manual means the DLM stops granting locks after losing a member until an
    operator acknowledges the fence, so dlm_controld keeps fencing on (no device: it waits
    for `dlm_tool fence_ack`); clusters without fencing run it with fencing off."""
    topo = clvm_pair()
    manual = topo.clusters[0].model_copy(update={"fencing": ClusterFencing.MANUAL})
    none = topo.clusters[0].model_copy(update={"fencing": ClusterFencing.NONE})
    assert dlm_controld_command(manual) == "dlm_controld"
    assert dlm_controld_command(none) == "dlm_controld --enable_fencing 0"
    # node ids are positions in the node list, as corosync.conf numbers them
    assert fence_ack_command(manual, "bob") == "dlm_tool fence_ack 2"
    assert "nodeid: 2" in corosync_conf(topo, manual).split("name: bob")[1]


def test_the_stack_starts_and_stops_on_one_node_as_an_operator_would() -> None:
    """No systemd in the guests: `cluster start` runs what `systemctl start corosync dlm`
    would (each daemon once, dlm_controld with the cluster's fencing, then a bounded wait
    for it to answer); `cluster stop` stops dlm_controld first (it leaves its CPG cleanly,
    and refuses while lockspaces exist), then corosync with a leave message."""
    manual = clvm_pair().clusters[0].model_copy(update={"fencing": ClusterFencing.MANUAL})
    start, stop = stack_command(manual, "start"), stack_command(manual, "stop")
    assert "(pgrep -x dlm_controld >/dev/null || dlm_controld) &&" in start
    assert "seq 120" in start  # bounded: at most a minute
    assert stop.index("pkill -TERM -x dlm_controld") < stop.index("corosync-cfgtool -H")
    assert "shutdown ignored, active lockspaces" in stop
    for line in (start, stop):  # valid shell, checked without running it
        assert subprocess.run(["bash", "-n", "-c", line], check=False).returncode == 0
    with pytest.raises(ValueError, match="no stack operation"):
        stack_command(manual, "restart")
