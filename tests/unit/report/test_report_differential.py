"""The differential check: what must agree across backends is compared, nothing else."""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from stackdrill.checks import CheckResult
from stackdrill.drill import load_drill
from stackdrill.drill.judge import judge
from stackdrill.drill.runner import execute
from stackdrill.report import Report
from stackdrill.report.differential import Difference, Differential, compare
from stackdrill.report.differential_html import render_differential_html

DRILL = Path(__file__).resolve().parents[3] / "lab" / "drills" / "split-brain.yaml"


@pytest.fixture(scope="module")
def runs() -> tuple[Report, Report]:
    """Two independent sim runs of the same drill and seed."""
    drill = load_drill(DRILL)
    first, second = (judge(execute(drill, backend="sim", seed=3)) for _ in range(2))
    return first, second


def with_state(report: Report, edit: Any, which: str = "state_after") -> Report:
    """A copy of `report` whose state summary `edit(state)` changed in place."""
    state = copy.deepcopy(getattr(report, which))
    edit(state)
    return report.model_copy(update={which: state})


def with_oos(report: Report, kb: int | None) -> Report:
    def edit(state: dict[str, Any]) -> None:
        state["drbd"]["r0"]["alice"]["out_of_sync_kb"] = kb

    return with_state(report, edit)


def row(diff: Differential, what: str, section: str = "state after") -> Difference:
    [found] = [r for r in diff.rows if r.what == what and r.section == section]
    return found


def test_two_sim_runs_with_the_same_seed_agree_on_every_row(runs: tuple[Report, Report]
                                                           ) -> None:
    diff = compare(*runs)
    assert diff.agrees, diff.disagreements
    assert (diff.drill, diff.left_backend, diff.right_backend) == ("split-brain", "sim", "sim")
    whats = {r.what for r in diff.rows}
    for expected in ("verdict", "check drbd[r0] ok", "drbd r0 alice role",
                     "drbd r0 bob connection", "drbd r0 bob peer_disk",
                     "drbd r0 alice out-of-sync", "lvm vg-shared alice lvs",
                     "lvm vg-shared bob clustered", "power alice", "running vm1"):
        assert expected in whats
    assert {r.section for r in diff.rows} == {"outcome", "state after", "state before"}
    assert row(diff, "drbd r0 alice connection").left == "StandAlone"


def test_a_changed_drbd_role_is_exactly_one_disagreeing_row(runs: tuple[Report, Report]
                                                            ) -> None:
    left = runs[0]

    def demote(state: dict[str, Any]) -> None:
        state["drbd"]["r0"]["bob"]["role"] = "Secondary"

    diff = compare(left, with_state(left, demote))
    assert not diff.agrees
    [bad] = diff.disagreements
    assert (bad.section, bad.what, bad.left, bad.right) == (
        "state after", "drbd r0 bob role", "Primary", "Secondary")


def test_a_changed_state_before_is_reported_in_its_own_section(runs: tuple[Report, Report]
                                                               ) -> None:
    def disconnect(state: dict[str, Any]) -> None:
        state["drbd"]["r0"]["alice"]["connection"] = "WFConnection"

    diff = compare(runs[0], with_state(runs[0], disconnect, "state_before"))
    assert [(r.section, r.what) for r in diff.disagreements] == [
        ("state before", "drbd r0 alice connection")]


@pytest.mark.parametrize(("left_kb", "right_kb", "agree"), [
    (0, 512, False), (512, 1024, True), (0, 0, True), (None, 0, False)])
def test_out_of_sync_compares_zero_against_non_zero_only(
        runs: tuple[Report, Report], left_kb: int | None, right_kb: int, agree: bool) -> None:
    diff = compare(with_oos(runs[0], left_kb), with_oos(runs[0], right_kb))
    assert row(diff, "drbd r0 alice out-of-sync").agree is agree
    assert diff.agrees is agree


def test_times_seqnos_extents_and_traces_are_not_compared(runs: tuple[Report, Report]
                                                          ) -> None:
    def noise(state: dict[str, Any]) -> None:
        state["time"] = 12345.0
        for view in state["lvm"]:
            view["seqno"] += 7
            view["metadata_lvs"] = {lv: [[999, 1]] for lv in view["metadata_lvs"]}
        state["drbd"]["r0"]["alice"]["uuids"] = {"current": "0"}

    right = with_state(runs[0], noise).model_copy(update={
        "trace_sha256": "0" * 64, "duration": 1.0, "started": 9.0, "timeline": ()})
    assert compare(runs[0], right).agrees


def test_lv_lists_compare_sorted_and_a_missing_lv_disagrees(runs: tuple[Report, Report]
                                                            ) -> None:
    def reverse(state: dict[str, Any]) -> None:
        state["lvm"][0]["lvs"] = list(reversed(state["lvm"][0]["lvs"]))

    def drop(state: dict[str, Any]) -> None:
        state["lvm"][1]["lvs"] = state["lvm"][1]["lvs"][:1]

    # the state at the start: after the split, `vgs` hangs on both (DLM awaits fencing)
    assert compare(runs[0], with_state(runs[0], reverse, "state_before")).agrees
    diff = compare(runs[0], with_state(runs[0], drop, "state_before"))
    assert [(r.section, r.what) for r in diff.disagreements] == [
        ("state before", "lvm vg-shared bob lvs")]


def test_a_host_observed_on_one_side_only_disagrees_on_each_field(
        runs: tuple[Report, Report]) -> None:
    def unobserved(state: dict[str, Any]) -> None:
        del state["drbd"]["r0"]["bob"]

    diff = compare(runs[0], with_state(runs[0], unobserved))
    bad = {r.what: r.right for r in diff.disagreements}
    assert set(bad) == {f"drbd r0 bob {f}" for f in
                        ("role", "disk", "connection", "peer_disk", "out-of-sync")}
    assert set(bad.values()) == {None}


def test_a_host_off_on_both_sides_is_compared_by_power_only(
        runs: tuple[Report, Report]) -> None:
    """No operator can run drbdadm or vgs on a powered-off host: the simulator still knows
    its state, a real backend cannot read it, so only its power state is compared; a host
    off on one side only still disagrees on everything."""
    def bob_off_unobserved(state: dict[str, Any]) -> None:
        state["power"]["bob"] = "off"
        del state["drbd"]["r0"]["bob"]
        state["lvm"] = [v for v in state["lvm"] if v["host"] != "bob"]

    def bob_off_known(state: dict[str, Any]) -> None:
        state["power"]["bob"] = "off"
        state["drbd"]["r0"]["bob"]["role"] = "Unconfigured"

    diff = compare(with_state(runs[0], bob_off_known), with_state(runs[0], bob_off_unobserved))
    assert diff.agrees, diff.disagreements
    assert row(diff, "power bob").left == "off"
    assert not any(r.what.startswith(("drbd r0 bob", "lvm vg-shared bob")) and
                   r.section == "state after" for r in diff.rows)
    one_side = compare(runs[0], with_state(runs[0], bob_off_unobserved))
    assert {"power bob", "drbd r0 bob role"} <= {r.what for r in one_side.disagreements}


def test_verdict_and_checks_by_name(runs: tuple[Report, Report]) -> None:
    left = runs[0]
    failed = CheckResult.failed("drbd[r0]", "not split")
    extra = CheckResult.passed("quorum", "quorate")
    right = left.model_copy(update={"verdict": "fail", "checks": (failed, extra)})
    diff = compare(left, right)
    assert [(r.what, r.left, r.right) for r in diff.disagreements] == [
        ("verdict", "pass", "fail"), ("check drbd[r0] ok", True, False),
        ("check quorum ok", None, True)]


def test_a_check_that_differs_keeps_why_each_side_said_so(runs: tuple[Report, Report]
                                                          ) -> None:
    """A user reading "check X ok: yes vs no" asks why: the row carries both details, and
    only where the outcome differs."""
    left = runs[0]
    kept = left.checks[0]
    failed = CheckResult.failed(kept.name, "no damage found: the race lost nothing")
    right = left.model_copy(update={"checks": (failed, *left.checks[1:])})
    row = next(r for r in compare(left, right).disagreements if r.what.startswith("check"))
    assert (row.left_detail, row.right_detail) == (kept.detail, failed.detail)
    assert all(r.left_detail is None for r in compare(left, left).rows)
    page = render_differential_html(compare(left, right))
    assert "sim: no damage found: the race lost nothing" in page


def test_reports_of_different_drills_are_refused(runs: tuple[Report, Report]) -> None:
    with pytest.raises(ValueError, match="different drills"):
        compare(runs[0], runs[1].model_copy(update={"drill": "other"}))


def test_a_row_cannot_claim_agreement_its_values_contradict() -> None:
    with pytest.raises(ValueError, match="agree"):
        Difference(section="outcome", what="verdict", left="pass", right="fail", agree=True)


def test_json_round_trips(runs: tuple[Report, Report]) -> None:
    diff = compare(runs[0], with_oos(runs[0], 0))
    assert Differential.model_validate_json(diff.to_json()) == diff


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.bad_rows = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.bad_rows += tag == "tr" and ("class", "bad") in attrs


def test_html_page_is_self_contained_and_marks_the_disagreeing_row(
        runs: tuple[Report, Report]) -> None:
    def demote(state: dict[str, Any]) -> None:
        state["drbd"]["r0"]["bob"]["role"] = "Secondary"

    page = render_differential_html(compare(runs[0], with_state(runs[0], demote)))
    parser = _Page()
    parser.feed(page)
    assert "style" in parser.tags and "script" not in parser.tags and "link" not in parser.tags
    assert parser.bad_rows == 1
    assert 'class="banner fail"' in page and "drbd r0 bob role" in page
    assert parser.tags.count("table") == 3  # outcome, state after, state before
    agreeing = render_differential_html(compare(*runs))
    assert 'class="banner pass"' in agreeing and 'class="bad"' not in agreeing


def test_a_vg_damaged_on_both_sides_is_compared_as_damaged_not_by_the_lvs_it_kept() -> None:
    """lvm-local-race: which of two concurrent lvcreates a round loses is a race (real lvm2
    and the simulator's seeded timing alike), so two runs keep different LVs. Both found
    the VG damaged: that agrees. A side whose check found no damage still disagrees."""
    drill = load_drill(DRILL.parent / "lvm-local-race.yaml")
    left, right = (judge(execute(drill, backend="sim", seed=s)) for s in (1, 2))
    lists = [{v["host"]: v["lvs"] for v in r.state_after["lvm"]} for r in (left, right)]
    assert lists[0] != lists[1], "the two seeds kept the same LVs: nothing to show"
    diff = compare(left, right)
    assert diff.agrees, diff.disagreements
    assert row(diff, "lvm vg-shared alice lvs").left == "damaged"
    [check] = [c for c in right.checks if c.name.startswith("lvm_consistent")]
    clean = check.model_copy(update={"data": {"vgs": {"vg-shared": {"orphans": [],
                                                                    "stale_mappings": []}}}})
    undamaged = right.model_copy(update={"checks": (clean,)})
    assert not row(compare(left, undamaged), "lvm vg-shared alice lvs").agree


def test_an_instance_listed_nowhere_agrees_with_one_running_on_no_host(
        runs: tuple[Report, Report]) -> None:
    """The simulator lists a stopped instance with no host; libvirt leaves it out of its
    list. Both say it runs nowhere (quorum-two-node's vm2 differed on that alone)."""
    def stopped(state: dict[str, Any]) -> None:
        state["running"]["vm2"] = []

    def unlisted(state: dict[str, Any]) -> None:
        del state["running"]["vm2"]

    left, right = with_state(runs[0], stopped), with_state(runs[1], unlisted)
    assert row(compare(left, right), "running vm2").agree
    assert not row(compare(runs[0], right), "running vm2").agree  # running vs nowhere
