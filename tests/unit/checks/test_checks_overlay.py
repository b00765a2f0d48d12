"""Overlay checks: arping, ping, `ping -M do -s 1422` and tracepath results across hosts."""

from __future__ import annotations

from stackdrill.checks import (
    OverlayProbe,
    overlay_arp,
    overlay_checks,
    overlay_mtu,
    reachable_within,
)

MAC = "fa:16:3e:00:00:01"


def probe(**kw: object) -> OverlayProbe:
    base: dict[str, object] = {
        "src": "cmp2",
        "dst": "vm1",
        "reachable": True,
        "full_size_ok": True,
        "path_mtu": 1450,
        "arp_mac": MAC,
        "expected_mac": MAC,
    }
    base.update(kw)
    return OverlayProbe(**base)  # type: ignore[arg-type]


def test_healthy_overlay_passes_all() -> None:
    """VXLAN over a 1500 underlay: path MTU 1450, ARP answers with the port's MAC."""
    assert all(r.ok for r in overlay_checks([probe(), probe(src="cmp3")]))


def test_path_mtu_blackhole_is_named() -> None:
    """Underlay MTU lowered: small pings pass, full frames vanish without an ICMP error."""
    r = overlay_mtu([probe(full_size_ok=False, path_mtu=None)])
    assert not r.ok and "path-MTU blackhole cmp2->vm1" in r.detail
    assert r.data["blackholes"] == ["cmp2->vm1"]


def test_signalled_lower_mtu_is_not_called_blackhole() -> None:
    r = overlay_mtu([probe(full_size_ok=False, path_mtu=1400)])
    assert not r.ok and "path MTU cmp2->vm1 is 1400, expected 1450" in r.detail
    assert r.data["blackholes"] == []


def test_arp_wrong_mac_after_move() -> None:
    """An instance keeps its MAC after recovery; a stale answer is a failure."""
    r = overlay_arp([probe(arp_mac="fa:16:3e:00:00:99")])
    assert not r.ok and "expected fa:16:3e:00:00:01" in r.detail
    assert not overlay_arp([probe(arp_mac=None)]).ok


def test_no_probes_never_ran() -> None:
    assert all(not r.ran and not r.ok for r in overlay_checks([]))


def test_reachability_returns_within_bound() -> None:
    """After a move (t=100) the controller updates every FDB; reachability must return."""
    ps = [probe(at=101, reachable=False), probe(at=103), probe(at=104)]
    assert reachable_within(ps, since=100, bound_s=5).ok
    late = reachable_within(ps, since=100, bound_s=2)
    assert not late.ok and "3s after" in late.detail
    flap = reachable_within([*ps, probe(at=105, reachable=False)], since=100, bound_s=5)
    assert not flap.ok


def test_a_frag_needed_answer_is_named_a_refusal_not_a_silent_blackhole() -> None:
    """A sending side too small for the frame answers ICMP 'frag needed' (recorded on the
    kernel: tests/conformance/recordings/vxlan-mtu-sender-low.json); the check says so."""
    refused = OverlayProbe(src="va", dst="vb", reachable=True, full_size_ok=False,
                           path_mtu=None, frag_needed_mtu=1350)
    result = overlay_mtu([refused])
    assert not result.ok
    assert "frag needed' (mtu 1350)" in result.detail
    assert "silently" not in result.detail and "blackhole" not in result.detail
    assert result.data["blackholes"] == []
