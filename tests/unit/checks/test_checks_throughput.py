"""The throughput check over iperf3 probes: the overlay's share of its underlay."""

from __future__ import annotations

from stackdrill.api import CommandResult, ThroughputProbe
from stackdrill.checks.throughput import overlay_throughput


def result(overlay: float, underlay: float) -> CommandResult:
    found = ThroughputProbe(src="web2", dst="web1", src_host="cmp2", dst_host="cmp1",
                            overlay_mbit=overlay, underlay_mbit=underlay)
    return CommandResult(ok=overlay > 0 and underlay > 0, throughput=found)


def test_a_ratio_inside_the_range_passes_and_is_shown() -> None:
    check = overlay_throughput({"t": result(9.24, 9.57)}, ["t"], min_ratio=0.94,
                               max_ratio=0.99)
    assert check.ok and check.detail == "overlay/underlay web2->web1 0.966 (9.24/9.57 Mbit/s)"


def test_a_ratio_below_the_range_fails_naming_the_pair_and_the_range() -> None:
    check = overlay_throughput({"t": result(4.1, 9.57)}, ["t"], min_ratio=0.94,
                               max_ratio=0.99)
    assert check.ran and not check.ok
    assert check.detail == ("web2->web1: overlay/underlay 0.428 (4.1/9.57 Mbit/s) outside "
                            "[0.94, 0.99]")


def test_an_underlay_that_carried_nothing_fails() -> None:
    check = overlay_throughput({"t": result(9.2, 0.0)}, ["t"], min_ratio=0.9, max_ratio=1)
    assert check.ran and not check.ok and "carried nothing to compare with" in check.detail


def test_a_probe_that_never_ran_or_gave_no_figure_makes_the_check_not_run() -> None:
    never = overlay_throughput({}, ["t"], min_ratio=0.9, max_ratio=1)
    assert not never.ran and not never.ok and "'t' never ran" in never.detail
    said = CommandResult(ok=False, detail="web1 has no port on the overlay")
    none = overlay_throughput({"t": said}, ["t"], min_ratio=0.9, max_ratio=1)
    assert not none.ran and none.detail.endswith("gave no figure: web1 has no port on the "
                                                 "overlay")
