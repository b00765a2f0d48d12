"""Pictures for reports: the lab's topology (graphviz) and the drill's timeline (matplotlib).

Both are plain PNG bytes, so the HTML page can inline them and Allure can attach them.
The topology is drawn by graphviz's `dot` program, a system package: when it is
missing, `topology_png` raises `PictureError` saying how to install it rather than
failing deep inside the graphviz wrapper.
"""

from __future__ import annotations

import html
import logging
import shutil
from collections import defaultdict
from typing import TYPE_CHECKING

from stackdrill.errors import StackdrillError
from stackdrill.report.timeline import timeline_png
from stackdrill.topology.model import DrbdResource, Topology

if TYPE_CHECKING:
    from stackdrill.report.model import Report

log = logging.getLogger(__name__)

MAX_ROWS = 8  # instance rows per host before "+N more"
ROW_HOSTS = 8  # hosts per row; more hosts make the picture compact
NET_COLOURS = {
    "management": "#dbe9f6",
    "storage": "#fde9d2",
    "replication": "#f8d7da",
    "tunnel": "#dff0d8",
    "cluster": "#ece2f5",
}


class PictureError(StackdrillError):
    """A picture cannot be drawn on this machine (a missing system program)."""

    exit_code = 2


def dot_available() -> bool:
    return shutil.which("dot") is not None


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _host_label(topology: Topology, host: str, report: Report | None, compact: bool) -> str:
    """An HTML-like graphviz table: the host, then one row per instance it ends up with."""
    h = topology.host(host)
    faults = [f for f in (report.faults if report else ()) if host in _fault_hosts(f.fault)]
    head_bg = "#f5b7b1" if faults else ("#eeeeee" if h.reserved else "#d6eaf8")
    roles = ",".join(r.value for r in h.roles)
    rows = [
        f'<TR><TD BGCOLOR="{head_bg}" ALIGN="CENTER"><B>{_esc(host)}</B>'
        f' <FONT POINT-SIZE="9">{_esc(roles)} · {h.vcpus} vCPU · {h.ram_mb // 1024} GiB'
        f"{' · spare' if h.reserved else ''}</FONT></TD></TR>"
    ]
    if h.disks:
        disks = ", ".join(f"{d.name} {d.size_gb}G" for d in h.disks)
        rows.append(f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="9">⛁ {_esc(disks)}</FONT></TD></TR>')
    if compact:
        nets = " ".join(n.name for n in topology.networks if host in n.addresses)
        if nets:
            rows.append(
                f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="9" COLOR="#566573">'
                f"⇆ {_esc(nets)}</FONT></TD></TR>"
            )
    for f in faults:
        rows.append(
            f'<TR><TD BGCOLOR="#fadbd8"><FONT POINT-SIZE="9" COLOR="#922b21">'
            f"⚡ {_esc(f.kind)} at {f.at:g}s</FONT></TD></TR>"
        )
    placed = _instances_on(topology, report).get(host, [])
    for name, note, colour in placed[:MAX_ROWS]:
        inst = topology.instance(name)
        vols = ", ".join(inst.volumes)
        ip = f" {inst.ip}" if inst.ip else ""
        rows.append(
            f'<TR><TD ALIGN="LEFT" BGCOLOR="{colour}"><FONT POINT-SIZE="9">▣ {_esc(name)}'
            f"{_esc(ip)}{' [' + _esc(vols) + ']' if vols else ''}{_esc(note)}</FONT></TD></TR>"
        )
    if len(placed) > MAX_ROWS:
        rows.append(
            f'<TR><TD><FONT POINT-SIZE="9">+{len(placed) - MAX_ROWS} more instances'
            "</FONT></TD></TR>"
        )
    return (
        '<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">'
        + "".join(rows)
        + "</TABLE>>"
    )


def _fault_hosts(fault: dict[str, object]) -> set[str]:
    hosts = {str(fault["host"])} if fault.get("host") else set()
    groups = fault.get("groups")
    if isinstance(groups, list | tuple):
        hosts |= {str(h) for g in groups if isinstance(g, list | tuple) for h in g}
    return hosts


def _instances_on(
    topology: Topology, report: Report | None
) -> dict[str, list[tuple[str, str, str]]]:
    """host -> [(instance, note, row colour)], where each instance is at the drill's end."""
    after = {i.name: i for i in (report.instances if report else ())}
    out: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for inst in topology.instances:
        r = after.get(inst.name)
        if r is None:
            out[inst.host].append((inst.name, "", "#ffffff"))
            continue
        if r.host_after is None:
            out[inst.host].append((inst.name, f" ✗ {r.state}", "#f5b7b1"))
        elif r.host_after != inst.host:
            how = " · remote volume" if r.attach_mode == "remote" else ""
            out[r.host_after].append((inst.name, f" ← {inst.host}{how}", "#d5f5e3"))
        else:
            out[inst.host].append((inst.name, "", "#ffffff"))
    return out


def _drbd_after(res: DrbdResource, report: Report | None) -> list[str]:
    """What `drbdadm status` said at the drill's end, one line per node (roles move,
    split brains leave nodes StandAlone: the picture must not show only the plan)."""
    nodes = ((report.state_after.get("drbd") or {}) if report else {}).get(res.name) or {}
    lines = []
    for host in res.nodes:
        st = nodes.get(host)
        if isinstance(st, dict) and st.get("running", True):
            state = "/".join(str(st[k]) for k in ("role", "disk") if k in st)
            conn = f" {st['connection']}" if "connection" in st else ""
            sb = " · split brain" if st.get("split_brain") else ""
            lines.append(f"end: {host} {state}{conn}{sb}")
        elif isinstance(st, dict):
            lines.append(f"end: {host} down")
    return lines


def _drbd_label(topology: Topology, res: DrbdResource, report: Report | None = None) -> str:
    mode = "dual-primary" if res.allow_two_primaries else f"primary {','.join(res.primary) or '-'}"
    lines = [
        f"DRBD {res.name} · protocol {res.protocol.value}",
        f"{res.nodes[0]} ⇄ {res.nodes[1]} · {mode}",
        f"fencing {res.fencing} · {res.size_gb} GiB",
        *_drbd_after(res, report),
    ]
    lines += [
        f"VG {vg.name} [{vg.locking.value} locking]"
        for vg in topology.volume_groups
        if vg.pv.drbd == res.name
    ]
    return "\n".join(lines)


def _host_order(topology: Topology) -> list[str]:
    """Topology order, but each DRBD peer right after its partner so pairs share a row."""
    partner: dict[str, str] = {}
    for res in topology.drbd:
        partner.setdefault(res.nodes[0], res.nodes[1])
    order: list[str] = []
    for host in topology.hosts:
        for name in (host.name, partner.get(host.name)):
            if name and name not in order:
                order.append(name)
    return order


def topology_dot(topology: Topology, report: Report | None = None) -> str:
    """The graphviz source: networks and overlays on top, hosts below (in rows of
    ROW_HOSTS when there are many) with their instances, each DRBD pair as a disk node
    under its two hosts. With a report, faulted hosts are red and moved instances are
    shown on their new host. Large labs drop the per-host network edges (spaghetti) and
    list each host's networks in its table instead."""
    import graphviz

    compact = len(topology.hosts) > ROW_HOSTS
    g = graphviz.Graph("topology", format="png")
    title = f"topology {topology.name}"
    if report is not None:
        title += f" — drill {report.drill}: {report.verdict.upper()}"
    g.attr(
        label=title,
        labelloc="t",
        fontsize="18",
        fontname="Helvetica",
        rankdir="TB",
        nodesep="0.25",
        ranksep="0.7",
        newrank="true",
    )
    g.attr("node", fontname="Helvetica", fontsize="10")
    g.attr("edge", fontname="Helvetica", fontsize="9")
    with g.subgraph(name="nets") as s:
        s.attr(rank="same")
        for net in topology.networks:
            colour = NET_COLOURS.get(net.purposes[0].value, "#ffffff")
            purposes = ", ".join(p.value for p in net.purposes)
            extra = f"\n{len(net.addresses)} hosts" if compact else ""
            s.node(
                f"net_{net.name}",
                f"{net.name}\n{net.cidr} · MTU {net.mtu}\n{purposes}{extra}",
                shape="box",
                style="rounded,filled",
                fillcolor=colour,
            )
        for ov in topology.overlays:
            s.node(
                f"ov_{ov.name}",
                f"overlay {ov.name}\nVNI {ov.vni} · MTU {ov.mtu}\n{ov.cidr} over {ov.network}",
                shape="hexagon",
                style="filled",
                fillcolor="#e8f8f5",
            )
    hosts = _host_order(topology)
    rows = [hosts[i : i + ROW_HOSTS] for i in range(0, len(hosts), ROW_HOSTS)]
    for n, row in enumerate(rows):
        with g.subgraph(name=f"row{n}") as s:
            s.attr(rank="same")
            for host in row:
                s.node(f"host_{host}", _host_label(topology, host, report, compact), shape="plain")
        if n:  # stack the rows: an invisible edge from the row above
            g.edge(f"host_{rows[n - 1][0]}", f"host_{row[0]}", style="invis", weight="10")
    if compact:
        first = [f"net_{n.name}" for n in topology.networks] + [
            f"ov_{o.name}" for o in topology.overlays
        ]
        for node in first[:1]:
            g.edge(node, f"host_{rows[0][0]}", style="invis")
    else:
        for net in topology.networks:
            for host in net.addresses:
                g.edge(f"net_{net.name}", f"host_{host}", color="#95a5a6", penwidth="0.8")
        for ov in topology.overlays:
            users = {i.host for i in topology.instances if i.overlay == ov.name}
            for host in sorted(users | set(topology.network(ov.network).addresses)):
                g.edge(f"ov_{ov.name}", f"host_{host}", style="dashed", color="#17a589")
    for res in topology.drbd:
        node = f"drbd_{res.name}"
        g.node(
            node,
            _drbd_label(topology, res, report),
            shape="cylinder",
            style="filled",
            fillcolor="#fadbd8",
            color="#c0392b",
            fontcolor="#78281f",
        )
        for host in res.nodes:
            g.edge(f"host_{host}", node, color="#c0392b", penwidth="3")
    source: str = g.source
    return source


def topology_png(topology: Topology, report: Report | None = None) -> bytes:
    """Render the topology picture as PNG bytes (needs graphviz's `dot`)."""
    import graphviz

    if not dot_available():
        raise PictureError(
            "graphviz's 'dot' program is not installed: install the system package "
            "'graphviz' (e.g. apt-get install graphviz) to draw topology pictures"
        )
    source = topology_dot(topology, report)
    try:
        data: bytes = graphviz.Source(source).pipe(format="png")
    except graphviz.ExecutableNotFound as exc:  # raced away between which() and pipe()
        raise PictureError(f"graphviz's 'dot' program cannot be run: {exc}") from None
    return data


__all__ = ["PictureError", "dot_available", "timeline_png", "topology_dot", "topology_png"]
