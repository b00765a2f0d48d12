"""Certain teardown of netns labs: their leftovers by lab id, and `down_all` for strays
(a lab's own teardown at exit or on a signal is backends/lifetime.py).

Everything a lab creates lives inside its own namespaces (`sd-<id>-...`), so removing
those namespaces (after killing what runs in them: a kept lab's volume servers too)
removes its interfaces, qdiscs and nftables tables too. `down_all` only ever touches
names of exactly stackdrill's shape and, unless told otherwise, only those of labs whose
owning process is gone and that were not kept on purpose.
"""

from __future__ import annotations

import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from stackdrill.backends.netns import names as naming
from stackdrill.backends.netns import nsops

log = logging.getLogger(__name__)

STATE_ROOT = Path("/var/tmp/stackdrill-netns")
ROOT_IF_RE = re.compile(r"^sd[0-9a-f]{4}(u|b|n|vx|ov|t|e|f)[0-9]")


def state_dir(names: naming.LabNames) -> Path:
    return STATE_ROOT / names.lab_id


def remove_lab_leftovers(lab_id: str) -> list[str]:
    """Remove every namespace and the state directory of lab `lab_id`."""
    names = naming.LabNames(lab_id)
    # instances and hosts first, the switch last: its bridges are what connects them
    ours = [n for n in nsops.list_namespaces() if names.owns_ns(n) and naming.is_stackdrill_ns(n)]
    removed = sorted(ours, key=lambda n: n == names.switch_ns)
    nsops.remove_namespaces(removed)
    shutil.rmtree(state_dir(names), ignore_errors=True)
    return removed


@dataclass
class DownReport:
    namespaces: list[str] = field(default_factory=list)
    interfaces: list[str] = field(default_factory=list)
    state_dirs: list[str] = field(default_factory=list)
    skipped_live: list[str] = field(default_factory=list)  # live or kept labs' namespaces


def down_all(include_live: bool = False, include_kept: bool = False) -> DownReport:
    """Remove leftovers of stackdrill's netns labs, never anything else.

    Only namespaces named exactly `sd-XXXX-...` (XXXX four hex digits), root-namespace
    interfaces named `sdXXXX<kind><n>` and state directories `/var/tmp/stackdrill-netns/XXXX`
    are candidates; a lab whose owning process still runs is left alone unless
    `include_live`, a lab kept on purpose unless `include_kept`.
    """
    report = DownReport()
    # under the registry lock: a lab being created meanwhile (its slot file written under
    # the same lock) counts as live, and no new lab takes a dead lab's id mid-removal
    with naming._registry_lock():
        live = {r.lab_id for r in naming.read_slots()
                if (r.owner_alive and not include_live) or (r.kept and not include_kept)}
        _remove_dead(report, live)
    return report


def _remove_dead(report: DownReport, live: set[str]) -> None:
    """down_all's work, with the registry lock held by the caller: everything of ours
    except what belongs to the ids in `live`."""
    ids: set[str] = set()
    for ns in nsops.list_namespaces():
        match = naming.NS_RE.fullmatch(ns)
        if not match:
            continue
        if match.group(1) in live:
            report.skipped_live.append(ns)
            continue
        ids.add(match.group(1))
    for lab_id in sorted(ids):
        report.namespaces += remove_lab_leftovers(lab_id)
    with nsops.ipr_root() as ipr:
        for link in ipr.get_links():
            name = str(link.get_attr("IFLA_IFNAME"))
            if ROOT_IF_RE.match(name) and name[2:6] not in live:
                ipr.link("del", index=link["index"])
                report.interfaces.append(name)
    if STATE_ROOT.is_dir():
        for path in sorted(STATE_ROOT.iterdir()):
            if naming.ID_RE.fullmatch(path.name) and path.name not in live:
                shutil.rmtree(path, ignore_errors=True)
                report.state_dirs.append(str(path))
    for rec in naming.read_slots():
        if rec.lab_id not in live:
            (naming.REGISTRY_DIR / f"{rec.lab_id}.json").unlink(missing_ok=True)


def remove_named(lab_name: str) -> list[str]:
    """Remove every netns lab called `lab_name` that no running process owns: kept on
    purpose, or left by a crashed run (a live lab tears itself down when it exits)."""
    removed: list[str] = []
    with naming._registry_lock():
        stale = [r for r in naming.read_slots()
                 if r.lab_name == lab_name and not r.owner_alive]
        for rec in stale:
            removed += remove_lab_leftovers(rec.lab_id)
            (naming.REGISTRY_DIR / f"{rec.lab_id}.json").unlink(missing_ok=True)
    return removed
