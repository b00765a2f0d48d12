"""The text inside the topology picture's nodes: each host as a table of what it holds and
where its instances end up, each DRBD resource with its state at the drill's end.

Graphviz HTML-like labels (escaped here), so a host's name, faults and instances read as
one box; with a report the picture shows the end of the drill, not only the plan.
"""

from __future__ import annotations

import html
from collections import defaultdict
from typing import TYPE_CHECKING

from stackdrill.topology.model import DrbdResource, Topology

if TYPE_CHECKING:
    from stackdrill.report.model import Report

MAX_ROWS = 8  # instance rows per host before "+N more"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def host_label(topology: Topology, host: str, report: Report | None, compact: bool) -> str:
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


def drbd_label(topology: Topology, res: DrbdResource, report: Report | None = None) -> str:
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
