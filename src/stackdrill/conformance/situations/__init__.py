"""Every situation of the corpus, by name. A situation lists the real backends that can
record it (its `recorders`); libvirt situations (DRBD, LVM, corosync on real guests) are
added here with a `libvirt` recorder, and `scripts/record-conformance.sh` picks them up."""

from __future__ import annotations

from stackdrill.conformance.model import Situation
from stackdrill.conformance.situations import (
    drbd_admin,
    drbd_loss,
    drbd_split,
    loss,
    mtu,
    tbf,
)

SITUATIONS: dict[str, Situation] = {s.name: s for s in (
    tbf.SITUATION,
    loss.WHOLE,
    loss.PARTIAL,
    mtu.SENDER,
    mtu.RECEIVER,
    *drbd_admin.SITUATIONS,
    *drbd_loss.SITUATIONS,
    *drbd_split.SITUATIONS,
)}

__all__ = ["SITUATIONS"]
