"""DRBD, LVM and quorum state as plain dicts, for a report's state_before/state_after.

What an operator would paste into a ticket: `drbdadm status` per resource and node,
per host the VG's metadata seqno and what is mapped versus what the metadata says,
and each cluster's membership and quorum. Keys are sorted so equal states serialise
identically.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from stackdrill.api import DrbdNodeStatus, Observation, QuorumStatus


def _plain(value: DrbdNodeStatus | QuorumStatus) -> dict[str, Any]:
    """A status as JSON-ready fields, keys sorted (tuples become lists)."""
    plain: dict[str, Any] = json.loads(json.dumps(asdict(value), sort_keys=True))
    return plain


def _segments(lvs: dict[str, list[tuple[int, int]]]) -> dict[str, list[list[int]]]:
    return {lv: [[first, count] for first, count in segs] for lv, segs in sorted(lvs.items())}


def state_summary(observation: Observation) -> dict[str, Any]:
    """{"time", "power", "running", "drbd", "lvm", "quorum"} from one Observation; "lvm" is
    one entry per (vg, host), as `lvs` on each host would list it."""
    lvm = [
        {
            "vg": view.vg,
            "host": view.host,
            "seqno": view.metadata_seqno,
            "clustered": view.clustered,
            "lvs": sorted(view.metadata_lvs),
            "active": sorted(view.active_lvs),
            "metadata_lvs": _segments(view.metadata_lvs),
            "active_lvs": _segments(view.active_lvs),
        }
        for view in sorted(observation.lvm, key=lambda v: (v.vg, v.host))
    ]
    return {
        "time": observation.time,
        "power": {h: str(p) for h, p in sorted(observation.power.items())},
        "running": {i: sorted(h) for i, h in sorted(observation.running.items())},
        "drbd": {
            r: {h: _plain(st) for h, st in sorted(nodes.items())}
            for r, nodes in sorted(observation.drbd.items())
        },
        "lvm": lvm,
        "quorum": {
            c: {h: _plain(st) for h, st in sorted(views.items())}
            for c, views in sorted(observation.quorum.items())
        },
    }
