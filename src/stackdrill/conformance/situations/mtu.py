"""VXLAN MTU per direction: the underlay MTU of the sending vs the receiving host lowered.

With the MTU of a's own underlay interface at 1400, a full-size (1450) overlay frame
from va needs 1500 bytes on the wire: a's VXLAN device refuses it and synthesises an ICMP
'frag needed' (mtu 1350) back to va (drivers/net/vxlan/vxlan_core.c, vxlan_xmit_one ->
skb_tunnel_check_pmtu, Linux >= 5.9 for a bridged VXLAN port), so ping names the MTU and
tracepath settles on it. With b's interface at 1400 instead, the frame leaves a whole and
is dropped on arrival at b's veth (is_skb_forwardable) with no ICMP: a blackhole. The
probe is the operator's probe of every backend (arping, ping, DF ping, tracepath) and the
finding is what the overlay check concludes from it.
"""

from __future__ import annotations

from stackdrill.api import OverlayProbe
from stackdrill.api.commands import ProbeCommand
from stackdrill.checks.overlay import EXPECTED_MTU, overlay_mtu
from stackdrill.conformance import labs
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation

LOW_MTU = 1400
PROBE = ProbeCommand(src="va", dst="vb", label="mtu")


def finding(probe: OverlayProbe, expected: int = EXPECTED_MTU) -> str:
    """What the overlay MTU check tells the operator: ok, blackhole (vanished without an
    ICMP), frag-needed (refused with one) or path-mtu (a smaller path MTU, no more)."""
    result = overlay_mtu([probe], expected=expected)
    if result.ok:
        return "ok"
    if probe.pair in result.data.get("blackholes", []):
        return "blackhole"
    return "frag-needed" if "frag needed" in result.detail else "path-mtu"


def _fields(probe: OverlayProbe | None, expected: int = EXPECTED_MTU) -> Fields:
    if probe is None:
        raise RuntimeError("the overlay probe could not run")
    return {
        "small_ping_ok": Observed(value=probe.reachable),
        "full_size_df_ping_ok": Observed(value=probe.full_size_ok),
        "frag_needed_mtu": Observed(value=probe.frag_needed_mtu, unit="bytes"),
        "tracepath_pmtu": Observed(value=probe.path_mtu, unit="bytes"),
        "mtu_check_finding": Observed(value=finding(probe, expected)),
    }


def _simulate(low_hosts: tuple[str, ...]) -> Fields:
    lab = labs.sim_lab()
    for host in low_hosts:
        lab.underlay.set_mtu(host, labs.NETWORK, LOW_MTU)  # the host's own interface
    lab.execute(PROBE, PROBE.label)
    lab.advance(lab.kernel.now + labs.SIM_LIMIT_S)
    return _fields(lab.command_results()[PROBE.label].probe)


def _record(low_hosts: tuple[str, ...]) -> Fields:
    with labs.netns_lab() as lab:
        for host in low_hosts:
            link = lab.underlay.link(host, labs.NETWORK)
            lab.underlay.set_mtu(lab.sock(link.ns), link.ifname, LOW_MTU)
        lab.execute(PROBE, PROBE.label)
        return _fields(lab.command_results()[PROBE.label].probe)


def _situation(name: str, low_host: str, side: str, *, both: bool = False) -> Situation:
    low_hosts = ("a", "b") if both else (low_host,)
    where = "both hosts" if both else f"the {side} host ({low_host})"
    return Situation(
        name=name,
        exercises=f"underlay interface MTU {LOW_MTU} on {where}: overlay probe va->vb",
        tolerances=dict.fromkeys(("small_ping_ok", "full_size_df_ping_ok", "frag_needed_mtu",
                                  "tracepath_pmtu", "mtu_check_finding"), EXACT),
        simulate=lambda: _simulate(low_hosts),
        recorders={"netns": lambda: _record(low_hosts)})


SENDER = _situation("vxlan-mtu-sender-low", "a", "sending")
RECEIVER = _situation("vxlan-mtu-receiver-low", "b", "receiving")
