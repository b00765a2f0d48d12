"""Volumes over iSCSI between guests: LIO's target on the storage guest that serves a
volume, open-iscsi's initiator on the compute guest that uses it (the seed's Cinder LVM
driver with its `lioadm` target helper, and Nova's libvirt volume driver).

The target is built with rtslib-fb, the library under targetcli-fb (one Python process per
export; targetcli would start one per setting): a block backstore on the LV, one target
per volume (`iqn...:VOLUME`), LUN 0, a portal on the storage guest's address on the
network the two share, and no authentication (demo mode: the lab's storage network is
its own). The initiator's login and replacement timeouts are the topology's
(`iscsi`, open-iscsi's defaults unless set), set on the node record before the login, as
the simulator models them. Without udev in the guests the disk
is found from `iscsiadm -m session -P 3` ("Attached scsi disk sdX"), its node made by
devtmpfs; nor does anything load the disk driver for a new SCSI device (udev would,
from its modalias), so the initiator's setup loads sd_mod itself.
"""

from __future__ import annotations

import shlex

from stackdrill.topology import IscsiInitiator

IQN_PREFIX = "iqn.2026-12.lab.stackdrill"
PORT = 3260
DISK_WAIT_TRIES = 150  # x 0.2 s: the SCSI scan after a login
# one change to LIO's configfs at a time on a server: two exports at once both created the
# iblock HBA ("File exists: .../core/iblock_0"), seen when a failover re-exported in parallel
LIO_LOCK = "/run/stackdrill/lio.lock"


def target_iqn(volume: str) -> str:
    return f"{IQN_PREFIX}:{volume}"


def initiator_iqn(host: str) -> str:
    return f"{IQN_PREFIX}:initiator:{host}"


EXPORT_PY = """\
import sys
from rtslib_fb import LUN, BlockStorageObject, FabricModule, NetworkPortal, Target, TPG
from rtslib_fb.utils import RTSLibError
name, dev, iqn, address, port = sys.argv[1:6]
try:
    so = BlockStorageObject(name)  # exported before: look it up
except RTSLibError:
    so = BlockStorageObject(name, dev=dev)
tpg = TPG(Target(FabricModule("iscsi"), wwn=iqn), 1)
if not list(tpg.luns):
    LUN(tpg, 0, so)
if not any(p.ip_address == address for p in tpg.network_portals):
    NetworkPortal(tpg, address, int(port))
for key, value in (("authentication", "0"), ("generate_node_acls", "1"),
                   ("cache_dynamic_acls", "1"), ("demo_mode_write_protect", "0")):
    tpg.set_attribute(key, value)
tpg.enable = True
"""


def export_script(vg: str, volume: str, address: str) -> str:
    """Serve `vg/volume` as its own target on `address` (idempotent: an existing export
    is kept as it is)."""
    args = " ".join(shlex.quote(a) for a in (volume, f"/dev/{vg}/{volume}",
                                              target_iqn(volume), address, str(PORT)))
    return (f"modprobe target_core_iblock && modprobe iscsi_target_mod && "
            f"(mountpoint -q /sys/kernel/config || mount -t configfs none /sys/kernel/config) "
            f"&& mkdir -p /run/stackdrill && flock {LIO_LOCK} python3 - {args} <<'EOF'\n"
            f"{EXPORT_PY}EOF")


UNEXPORT_PY = """\
import sys
from rtslib_fb import RTSRoot
name, iqn = sys.argv[1:3]
root = RTSRoot()
for target in root.targets:
    if target.wwn == iqn:
        target.delete()
for so in root.storage_objects:
    if so.name == name:
        so.delete()
"""


def unexport_script(volume: str) -> str:
    """Remove the volume's target and backstore, if any (its LV can then be deactivated)."""
    args = f"{shlex.quote(volume)} {shlex.quote(target_iqn(volume))}"
    return (f"[ -d /sys/kernel/config/target/iscsi ] || exit 0; "
            f"flock {LIO_LOCK} python3 - {args} <<'EOF'\n{UNEXPORT_PY}EOF")


def initiator_setup(host: str) -> str:
    """The compute guest's initiator name and iscsid, started as its init would."""
    return (f"mkdir -p /etc/iscsi && echo InitiatorName={initiator_iqn(host)} "
            f"> /etc/iscsi/initiatorname.iscsi && modprobe iscsi_tcp && modprobe sd_mod && "
            f"(pgrep -x iscsid >/dev/null || iscsid)")


def session_disk(iqn: str, portal: str) -> str:
    """Shell: the disk (sdX) of the session to `iqn` at `portal`, if any. A target reached
    at two portals (the old server and the promoted one, after a failover) has one
    "Target:" block per session in `-P 3`, each with its "Current Portal"."""
    return ("iscsiadm -m session -P 3 2>/dev/null | awk -v t=" + shlex.quote(iqn)
            + " -v p=" + shlex.quote(f"{portal},")
            + " '$1 == \"Target:\" { t_on = ($2 == t); on = 0 } "
            "$1 == \"Current\" && $2 == \"Portal:\" { on = t_on && index($3, p) == 1 } "
            "on && /Attached scsi disk/ { print $4; exit }'")


def session_portals(iqn: str) -> str:
    """Shell: the portal (address:port) of each session to `iqn`, one per line."""
    return ("iscsiadm -m session 2>/dev/null | awk -v t=" + shlex.quote(iqn)
            + " '$4 == t { split($3, a, \",\"); print a[1] }'")


def login_script(host: str, volume: str, address: str, timeouts: IscsiInitiator) -> str:
    """Log `host` in to the volume's target at `address` (or find its session there), and
    print the attached disk's device path. Sessions to the same target at another portal
    are from a server that lost the volume (a failover moved it): once the new disk is
    there they are logged out, which fails at once the I/O still queued on them, as
    os-brick's disconnect of the old connection does (else it waits out the replacement
    timeout, and a writer killed meanwhile stays in D state)."""
    iqn, portal = target_iqn(volume), f"{address}:{PORT}"
    node = f"-m node -T {shlex.quote(iqn)} -p {shlex.quote(portal)}"
    stale_node = f"-m node -T {shlex.quote(iqn)} -p \"$old\""
    return "\n".join([
        "set -e",
        initiator_setup(host),
        f"iscsiadm {node} >/dev/null 2>&1 || iscsiadm {node} -o new >/dev/null",
        f"iscsiadm {node} -o update -n node.session.timeo.replacement_timeout "
        f"-v {timeouts.replacement_timeout}",
        f"iscsiadm {node} -o update -n 'node.conn[0].timeo.login_timeout' "
        f"-v {timeouts.login_timeout}",
        f"{session_portals(iqn)} | grep -qxF {shlex.quote(portal)} || "
        f"iscsiadm {node} --login >/dev/null",
        f"for i in $(seq {DISK_WAIT_TRIES}); do",
        f"  dev=$({session_disk(iqn, portal)})",
        '  if [ -n "$dev" ] && [ -b "/dev/$dev" ]; then',
        f"    for old in $({session_portals(iqn)}); do",
        f"      [ \"$old\" != {shlex.quote(portal)} ] || continue",
        f"      iscsiadm {stale_node} --logout >/dev/null && "
        f"iscsiadm {stale_node} -o delete >/dev/null || "
        'echo "iscsiadm: a session at $old stays" >&2',
        "    done",
        '    echo "/dev/$dev"; exit 0',
        "  fi",
        "  sleep 0.2",
        "done",
        f"echo 'iscsiadm: logged in to {iqn} at {portal}, but no disk appeared' >&2",
        "exit 1",
    ])


def logout_script(volume: str) -> str:
    """Log out of the volume's target, if logged in, and forget its node record."""
    iqn = shlex.quote(target_iqn(volume))
    return (f"iscsiadm -m session 2>/dev/null | grep -qF ' {target_iqn(volume)} ' || exit 0; "
            f"iscsiadm -m node -T {iqn} --logout >/dev/null && "
            f"iscsiadm -m node -T {iqn} -o delete >/dev/null")
