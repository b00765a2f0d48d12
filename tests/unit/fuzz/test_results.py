"""The results store: one row per commit, parameters and seed, resumed only for the same."""

from __future__ import annotations

from pathlib import Path

from stackdrill.fuzz.results import ResultStore
from stackdrill.fuzz.sweep import SeedResult, Verdict


def result(seed: int, verdict: Verdict = Verdict.PASS) -> SeedResult:
    failed = ("single_writer",) if verdict is Verdict.FAIL else ()
    return SeedResult(seed, verdict, "nova-drbd", failed,
                      {"single_writer": "vol-1: two writers"} if failed else {}, "ab" * 32,
                      "c1", 0.5, "host:1")


def test_a_seed_is_stored_once_and_read_back_as_it_was(tmp_path: Path) -> None:
    store = ResultStore(f"sqlite:///{tmp_path}/r.sqlite", "c1")
    assert store.add(result(1)) and store.add(result(2, Verdict.FAIL))
    assert not store.add(result(1))  # a second sweep over the same seed: no duplicate
    back = list(store.results(0, 10))
    assert [r.seed for r in back] == [1, 2]
    assert back[1].same_verdict(result(2, Verdict.FAIL)) and back[1].details == {
        "single_writer": "vol-1: two writers"}
    assert store.stored_seeds(2, 10) == {2}  # the range's end is exclusive, start inclusive


def test_another_commit_or_other_parameters_resume_nothing(tmp_path: Path) -> None:
    """Verdicts of other code (or another target's parameters) are not this sweep's."""
    url = f"sqlite:///{tmp_path}/r.sqlite"
    ResultStore(url, "c1").add(result(1))
    assert ResultStore(url, "c1").stored_seeds(0, 10) == {1}
    assert ResultStore(url, "c2").stored_seeds(0, 10) == set()
    assert ResultStore(url, "c1", parameters='{"backend": "netns"}').stored_seeds(0, 10) == set()
    assert ResultStore(url, "c2").add(result(1))  # the same seed on new code is a new row
