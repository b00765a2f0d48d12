"""Pacemaker's CIB (/var/lib/pacemaker/cib/cib.xml, or `cibadmin --query` saved there):
how the cluster fences a node it lost. corosync.conf says who is a member and who keeps
quorum, not whether anyone is shot; that decides whether a DRBD `fencing` policy and the
DLM's waits ever end, so the importer reads it rather than assume a fence device.

Pacemaker's rules (pacemaker's lib/pengine/unpack.c, `stonith-enabled` defaults to true;
a STONITH resource is a `primitive` of class `stonith`): fencing off -> none; a
fence_manual / meatware device -> manual (an operator acknowledges); any other fence
device -> power. Parsed with defusedxml, as the domain XML is."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET

from stackdrill.errors import Problem
from stackdrill.importer.files import ConfigError
from stackdrill.importer.result import Source
from stackdrill.topology.model import ClusterFencing

CIB_PATH = "var/lib/pacemaker/cib/cib.xml"
MANUAL_AGENTS = {"fence_manual", "meatware", "fence_ack_manual"}
FALSE = {"false", "no", "off", "0", "n"}


@dataclass(frozen=True)
class CibFencing:
    """What the CIB says about fencing, with where it says it."""

    fencing: ClusterFencing
    source: Source
    why: str  # how it was derived, for the operator to check


def parse_cib(text: str, name: str) -> CibFencing:
    """The cluster's fencing as `text` (a CIB) configures it."""
    try:
        root: Element = SafeET.fromstring(text)
    except (ParseError, defusedxml.DefusedXmlException) as exc:
        raise ConfigError(name, [Problem("", f"not a readable CIB: {exc}")]) from None
    if root.tag != "cib":
        raise ConfigError(name, [Problem("", f"the root element is <{root.tag}>, not <cib>")])
    source = Source(name, key="configuration")
    if _stonith_disabled(root):
        return CibFencing(ClusterFencing.NONE, Source(name, key="crm_config/stonith-enabled"),
                          "stonith-enabled=false: no node is ever fenced")
    agents = sorted(str(p.get("type", "")) for p in root.iter("primitive")
                    if p.get("class") == "stonith")
    if not agents:
        return CibFencing(ClusterFencing.NONE, source, "stonith-enabled but no fence device: "
                          "Pacemaker fences nobody and starts no resource")
    if all(agent in MANUAL_AGENTS for agent in agents):
        return CibFencing(ClusterFencing.MANUAL, Source(name, key=f"primitive[{agents[0]}]"),
                          f"fence device {agents[0]}: an operator acknowledges each fencing")
    agent = next(a for a in agents if a not in MANUAL_AGENTS)
    return CibFencing(ClusterFencing.POWER, Source(name, key=f"primitive[{agent}]"),
                      f"fence device {agent}: the node is powered off")


def _stonith_disabled(root: Element) -> bool:
    for config in root.iter("crm_config"):
        for pair in config.iter("nvpair"):
            if pair.get("name") == "stonith-enabled":
                return str(pair.get("value", "")).lower() in FALSE
    return False
