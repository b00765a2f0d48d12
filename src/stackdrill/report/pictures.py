"""Pictures for reports: the lab's topology (graphviz) and the drill's timeline as PNG.

Plain PNG bytes, so Allure can attach them and the HTML page can inline the topology
(the page draws its timeline as SVG). The topology is drawn by graphviz's `dot`
program, a system package: when it is missing, `topology_png` raises `PictureError`
saying how to install it rather than failing deep inside the graphviz wrapper. The
timeline PNG is the page's SVG rasterised by resvg (a self-contained wheel).
"""

from __future__ import annotations

import logging
import shutil
from typing import TYPE_CHECKING, Any

from stackdrill.errors import StackdrillError
from stackdrill.report.topology_labels import drbd_label, host_label
from stackdrill.topology.model import Topology

if TYPE_CHECKING:
    from stackdrill.report.model import Report

log = logging.getLogger(__name__)

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


def _network_nodes(g: Any, topology: Topology, compact: bool) -> None:
    """Networks and overlays, side by side on the top rank."""
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


def _host_rows(g: Any, topology: Topology, report: Report | None, compact: bool
               ) -> list[list[str]]:
    """Hosts in rows of ROW_HOSTS, each row one rank, stacked by invisible edges."""
    hosts = _host_order(topology)
    rows = [hosts[i : i + ROW_HOSTS] for i in range(0, len(hosts), ROW_HOSTS)]
    for n, row in enumerate(rows):
        with g.subgraph(name=f"row{n}") as s:
            s.attr(rank="same")
            for host in row:
                s.node(f"host_{host}", host_label(topology, host, report, compact), shape="plain")
        if n:  # stack the rows: an invisible edge from the row above
            g.edge(f"host_{rows[n - 1][0]}", f"host_{row[0]}", style="invis", weight="10")
    return rows


def _network_edges(g: Any, topology: Topology, rows: list[list[str]], compact: bool) -> None:
    """Each network and overlay to its hosts; a large lab only anchors the rows below."""
    if compact:
        first = [f"net_{n.name}" for n in topology.networks] + [
            f"ov_{o.name}" for o in topology.overlays
        ]
        for node in first[:1]:
            g.edge(node, f"host_{rows[0][0]}", style="invis")
        return
    for net in topology.networks:
        for host in net.addresses:
            g.edge(f"net_{net.name}", f"host_{host}", color="#95a5a6", penwidth="0.8")
    for ov in topology.overlays:
        users = {i.host for i in topology.instances if i.overlay == ov.name}
        for host in sorted(users | set(topology.network(ov.network).addresses)):
            g.edge(f"ov_{ov.name}", f"host_{host}", style="dashed", color="#17a589")


def _drbd_nodes(g: Any, topology: Topology, report: Report | None) -> None:
    """Each DRBD resource as a disk under its two hosts."""
    for res in topology.drbd:
        node = f"drbd_{res.name}"
        g.node(
            node,
            drbd_label(topology, res, report),
            shape="cylinder",
            style="filled",
            fillcolor="#fadbd8",
            color="#c0392b",
            fontcolor="#78281f",
        )
        for host in res.nodes:
            g.edge(f"host_{host}", node, color="#c0392b", penwidth="3")


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
    _network_nodes(g, topology, compact)
    rows = _host_rows(g, topology, report, compact)
    _network_edges(g, topology, rows, compact)
    _drbd_nodes(g, topology, report)
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


def timeline_png(report: Report) -> bytes:
    """The report's timeline (the same SVG the HTML page shows) as PNG bytes."""
    try:
        import resvg_py
    except ImportError:
        raise PictureError("the timeline picture needs the 'resvg-py' package: "
                           "pip install 'stackdrill[report]'") from None
    from stackdrill.report.timeline_svg import timeline_svg

    png: bytes = resvg_py.svg_to_bytes(svg_string=str(timeline_svg(report)),
                                       background="#ffffff")
    return png


__all__ = ["PictureError", "dot_available", "timeline_png", "topology_dot", "topology_png"]
