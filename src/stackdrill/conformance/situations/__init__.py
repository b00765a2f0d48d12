"""Every situation of the corpus, by name. A situation lists the real backends that can
record it (its `recorders`); libvirt situations (DRBD, LVM, corosync on real guests) are
added here with a `libvirt` recorder, and `scripts/record-conformance.sh` picks them up."""

from __future__ import annotations

from stackdrill.conformance.model import Situation
from stackdrill.conformance.situations import (
    cluster,
    cluster_crash,
    cut,
    drbd_admin,
    drbd_csums,
    drbd_data,
    drbd_data_power,
    drbd_data_roles,
    drbd_loss,
    drbd_refused,
    drbd_revert,
    drbd_split,
    drbd_suspend,
    drbd_variants,
    drbd_verify,
    iscsi,
    kernel_variants,
    loss,
    lvm,
    lvm_daemon,
    mtu,
    overlay,
    overlay_move,
    tbf,
)

SITUATIONS: dict[str, Situation] = {s.name: s for s in (
    tbf.SITUATION,
    loss.WHOLE,
    loss.PARTIAL,
    cut.ONE_WAY,
    mtu.SENDER,
    mtu.RECEIVER,
    *overlay.VTEP_LOSS,
    *overlay.DEVICE,
    *overlay_move.MOVE,
    *drbd_admin.SITUATIONS,
    *drbd_refused.SITUATIONS,
    *drbd_csums.SITUATIONS,
    *drbd_loss.SITUATIONS,
    *drbd_data.SITUATIONS,
    *drbd_data_roles.SITUATIONS,
    *drbd_data_power.SITUATIONS,
    *drbd_revert.SITUATIONS,
    *drbd_split.SITUATIONS,
    *drbd_suspend.SITUATIONS,
    *drbd_variants.SITUATIONS,
    *drbd_verify.SITUATIONS,
    *lvm.SITUATIONS,
    *lvm_daemon.SITUATIONS,
    *cluster.SITUATIONS,
    *cluster_crash.SITUATIONS,
    *kernel_variants.SITUATIONS,
    *iscsi.SITUATIONS,
)}

__all__ = ["SITUATIONS"]
