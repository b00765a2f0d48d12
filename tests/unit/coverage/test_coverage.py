"""The coverage table says only what the project does: every covered situation's drills
run on sim, its scenario exists and runs those drills, the real backends it claims are
ones the drills can run on and whose CI set selects the scenario, and the README shows
the table as `stackdrill coverage --markdown` prints it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from stackdrill.coverage import Status, coverage_rows, load_catalogue
from stackdrill.coverage.model import Catalogue
from stackdrill.errors import InputError

ROOT = Path(__file__).resolve().parents[3]
CATALOGUE = ROOT / "peer-suites.yaml"
SCENARIOS = ROOT / "scenarios"
# the real-backend sets: name -> (backend, pytest selection, the line of the script that
# runs it); a situation's `real` backend must be selected by one of its backend's sets
CI_SETS = {
    "vm": ("libvirt", ["-m", "vm"], ("scripts/test.sh", "bash scripts/vm-set.sh vm")),
    "vm_peer": ("libvirt", ["-m", "vm_peer"],
                ("scripts/test-vm-peer.sh", "bash scripts/vm-set.sh vm_peer")),
    "netns": ("netns", ["-m", "not vm", "-k", "network"],
              ("scripts/test.sh",
               "run_pytest scenarios -m 'not vm' --lab-backend netns -k network")),
}


@pytest.fixture(scope="module")
def rows():  # type: ignore[no-untyped-def]
    return coverage_rows(load_catalogue(CATALOGUE), ROOT / "lab" / "drills")


class _Collected:
    """Node ids pytest selects for one backend's CI set, and whether each is skipped."""

    def __init__(self) -> None:
        self.items: dict[str, bool] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            skipped = item.get_closest_marker("skip") is not None
            self.items[item.nodeid.split("scenarios/")[-1]] = skipped


def _selected(backend: str, selection: list[str] | None = None) -> dict[str, bool]:
    collected = _Collected()
    args = ["--collect-only", "-q", "-p", "no:cacheprovider", "--lab-backend", backend,
            *(selection or []), str(SCENARIOS)]
    pytest.main(args, plugins=[collected])
    return collected.items


def test_the_sets_here_are_the_ones_the_scripts_run() -> None:
    assert "pytest scenarios -m \"$marker\" --lab-backend libvirt" in \
        (ROOT / "scripts" / "vm-set.sh").read_text()
    for _backend, _selection, (script, line) in CI_SETS.values():
        assert line in (ROOT / script).read_text(), f"{script} no longer runs: {line}"


def test_every_covered_situation_runs_on_sim_and_where_it_claims(rows) -> None:  # type: ignore[no-untyped-def]
    covered = [r for r in rows if r.status is Status.COVERED]
    assert covered
    for row in covered:
        assert row.on_sim, f"{row.situation.key}: its drills cannot run on sim"
        for backend in row.situation.real:
            assert backend in row.runs_on, \
                f"{row.situation.key}: claims {backend}, its drills cannot run there"


def _drills_in(scenario: str) -> set[str]:
    """Drill names a scenario test runs: drill("name") calls in its body, or the id of its
    parametrized case."""
    file, _, test = scenario.partition("::")
    name, _, param = test.partition("[")
    tree = ast.parse((SCENARIOS / file).read_text())
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    called = {c.args[0].value for c in ast.walk(func) if isinstance(c, ast.Call)
              and getattr(c.func, "id", "") == "drill" and c.args
              and isinstance(c.args[0], ast.Constant)}
    case = param.rstrip("]")  # 'vm-disk-failure-cmp1-cmp2': the drill, then other params
    return called | {case} | {case[:i] for i in range(len(case)) if case[i] == "-"}


def test_every_scenario_exists_and_runs_the_drills_named(rows) -> None:  # type: ignore[no-untyped-def]
    on_sim = _selected("sim")
    for row in rows:
        ran: set[str] = set()
        for scenario in row.situation.scenarios:
            assert scenario in on_sim, f"{row.situation.key}: no scenario {scenario}"
            assert not on_sim[scenario], f"{row.situation.key}: {scenario} is skipped on sim"
            ran |= _drills_in(scenario)
        assert set(row.situation.drills) <= ran, \
            f"{row.situation.key}: {row.situation.scenarios} do not run {row.situation.drills}"


@pytest.mark.parametrize("backend", ["libvirt", "netns"])
def test_claimed_real_backends_select_the_scenario_in_a_set(rows, backend: str) -> None:  # type: ignore[no-untyped-def]
    """A situation claiming `backend` has a scenario that one of that backend's sets
    selects and does not skip (a situation may need one drill on guests and another on
    namespaces)."""
    selected: dict[str, bool] = {}
    for set_backend, selection, _script in CI_SETS.values():
        if set_backend == backend:
            for node, skipped in _selected(backend, selection).items():
                selected[node] = selected.get(node, True) and skipped
    claimed = [r.situation for r in rows if backend in r.situation.real]
    assert claimed, f"no situation claims {backend}: nothing to check"
    for situation in claimed:
        run = [s for s in situation.scenarios if s in selected and not selected[s]]
        assert run, (f"{situation.key}: no {backend} set selects (and runs) any of "
                     f"{situation.scenarios}")


@pytest.mark.parametrize(("entry", "says"), [
    ("{suite: jepsen, test: t, rehearses: r, asserts: a, drills: [x], missing: m}",
     "give drills and scenarios, or missing, or out_of_scope"),
    ("{suite: jepsen, test: t, rehearses: r, asserts: a, drills: [x]}",
     "a covered situation names its drills and its scenarios"),
    ("{suite: jepsen, test: t, rehearses: r, asserts: a, missing: m, real: [netns]}",
     "real names backends of a covered situation"),
    ("{suite: cts, test: t, rehearses: r, asserts: a, missing: m}", "suite"),
])
def test_a_malformed_entry_is_named_by_file_and_path(tmp_path: Path, entry: str,
                                                     says: str) -> None:
    path = tmp_path / "coverage.yaml"
    path.write_text(f"situations:\n  - {entry}\n")
    with pytest.raises(InputError) as err:
        load_catalogue(path)
    assert err.value.file == str(path)
    assert says in err.value.render(), err.value.render()


def test_a_situation_listed_twice_is_refused() -> None:
    entry = {"suite": "jepsen", "test": "t", "rehearses": "r", "asserts": "a", "missing": "m"}
    with pytest.raises(ValueError, match="listed twice: jepsen:t"):
        Catalogue.model_validate({"situations": [entry, entry]})
