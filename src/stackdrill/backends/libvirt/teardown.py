"""Certain teardown: find a lab's objects in libvirt again and remove exactly those.

Works without any memory of the run (after a crash, or from `stackdrill down` in another
shell). A domain is removed only when its name has the lab's prefix AND it carries the lab's
metadata mark; a network only when its bridge is the one the lab would have named. Anything
else that merely looks similar is reported as skipped and left alone.
"""

from __future__ import annotations

import contextlib
import logging
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import libvirt

from stackdrill.backends.libvirt.naming import METADATA_NS, LabNames, parse_mark, parse_owner

log = logging.getLogger(__name__)


@dataclass
class TeardownReport:
    removed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # looked like ours, is not: left alone
    problems: list[str] = field(default_factory=list)


def domain_mark(dom: libvirt.virDomain) -> tuple[str, str] | None:
    try:
        return parse_mark(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS))
    except libvirt.libvirtError:
        return None


def domain_owner(dom: libvirt.virDomain) -> str:
    """Who runs the lab this domain belongs to (see `naming.metadata_xml`)."""
    try:
        return parse_owner(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS))
    except libvirt.libvirtError:
        return ""


def lab_domains(conn: libvirt.virConnect, lab: str) -> list[libvirt.virDomain]:
    """Domains this lab defined on `conn` (prefix and mark both agree)."""
    names = LabNames(lab)
    return [
        d for d in conn.listAllDomains()
        if d.name().startswith(names.prefix)
        and domain_mark(d) == (lab, names.host_of(d.name()))
    ]


def existing(conn: libvirt.virConnect, lab: str) -> list[str]:
    """What already carries this lab's names on `conn` (domains, networks, its pool), with
    each domain's owner: a lab of that name that another process runs or kept."""
    names = LabNames(lab)
    found = [f"domain {d.name()} (owner {domain_owner(d) or 'unknown'})"
             for d in conn.listAllDomains() if d.name().startswith(names.prefix)]
    found += [f"network {n.name()}" for n in conn.listAllNetworks()
              if n.name().startswith(names.prefix)]
    found += [f"pool {p.name()}" for p in conn.listAllStoragePools()
              if p.name() == names.pool()]
    return found


def teardown_lab(conn: libvirt.virConnect, lab: str) -> TeardownReport:
    names = LabNames(lab)
    report = TeardownReport()
    ours = {d.name() for d in lab_domains(conn, lab)}
    for dom in conn.listAllDomains():
        name = dom.name()
        if not name.startswith(names.prefix):
            continue
        if name not in ours:
            report.skipped.append(f"domain {name} (no stackdrill mark for lab {lab})")
            log.warning("leaving domain %s alone: it is not marked as lab %s's", name, lab)
            continue
        _attempt(report, f"domain {name}", lambda d=dom: _remove_domain(d))
    for net in conn.listAllNetworks():
        name = net.name()
        if not name.startswith(names.prefix):
            continue
        if _bridge(net) != names.bridge(name[len(names.prefix):]):
            report.skipped.append(f"network {name} (bridge is not the lab's)")
            continue
        _attempt(report, f"network {name}", lambda n=net: _remove_network(n))
    try:
        pool = conn.storagePoolLookupByName(names.pool())
    except libvirt.libvirtError:
        pool = None
    if pool is not None:
        _attempt(report, f"pool {names.pool()}", lambda: _remove_pool(pool))
    return report


def _attempt(report: TeardownReport, what: str, action: object) -> None:
    try:
        action()  # type: ignore[operator]
    except libvirt.libvirtError as exc:
        report.problems.append(f"{what}: {exc}")
        log.error("teardown of %s failed: %s", what, exc)
    else:
        report.removed.append(what)


def _remove_domain(dom: libvirt.virDomain) -> None:
    if dom.isActive():
        dom.destroy()
    try:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                          | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
    except libvirt.libvirtError:
        dom.undefine()


def _remove_network(net: libvirt.virNetwork) -> None:
    if net.isActive():
        net.destroy()
    net.undefine()


def _remove_pool(pool: libvirt.virStoragePool) -> None:
    if not pool.isActive():
        pool.create()
    pool.refresh(0)
    for vol in pool.listAllVolumes():
        try:
            vol.delete(0)
        except libvirt.libvirtError as exc:  # gone since the listing: what teardown wants
            if exc.get_error_code() != libvirt.VIR_ERR_NO_STORAGE_VOL:
                raise
    directory = _pool_path(pool)
    pool.destroy()
    if directory is not None and directory.is_dir():
        for console in directory.glob("*.console"):  # virtlogd's files, read by then
            console.unlink()
    with contextlib.suppress(libvirt.libvirtError):  # the test driver has no directory
        pool.delete(0)  # the (now empty) directory
    pool.undefine()


def _pool_path(pool: libvirt.virStoragePool) -> Path | None:
    elem = ET.fromstring(pool.XMLDesc(0)).find("target/path")
    return None if elem is None or not elem.text else Path(elem.text)


def _bridge(net: libvirt.virNetwork) -> str | None:
    try:
        text = net.XMLDesc(0)
    except libvirt.libvirtError:  # removed meanwhile (another teardown): nothing to do
        return None
    elem = ET.fromstring(text).find("bridge")
    return None if elem is None else elem.get("name")
