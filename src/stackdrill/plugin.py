"""The pytest plugin: `--lab-*` options, markers, and the `run_drill` fixture; the lab
fixtures (`lab`, `module_lab`, `session_lab`, `faults`, ...) are in stackdrill.plugin_labs,
what CI reports get in stackdrill.plugin_reports, both loaded from here. Registered
through the `pytest11` entry point, so `pytest scenarios/` finds it.

Labs are always torn down at the end of their scope (kept with --lab-keep), even when a
test fails; their names carry the xdist worker id so `-n auto` never collides.

A test whose lab could not be brought up, driven or observed (an InfrastructureError, e.g.
"lab not ready: ...") says nothing about the recovery: it is reported as INFRA-ERROR, not
FAILED, and a session whose only non-passing tests are such errors exits 3, like the CLI.

Every test that runs a lab records its backend, seed (and a drill's name and trace hash)
as JUnit properties (`stackdrill_backend`, ...) and, with `--alluredir`, as Allure
parameters and labels; the Allure results also get `environment.properties` and
`categories.json` (see stackdrill.report.allure).

The plugin loads in every pytest process, the xdist controller too, which never runs a
lab: what only a test needs (backends, drills, reports, and through them the recovery
engine, SQLAlchemy and Alembic) is imported when a test first needs it, not here.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from stackdrill.errors import BackendUnavailableError, InfrastructureError, UnsupportedError
from stackdrill.plugin_labs import DEFAULT_SEED, lab_name, option
from stackdrill.plugin_reports import DAMAGE_PROPERTY, record_run

if TYPE_CHECKING:
    from stackdrill.drill.model import Drill
    from stackdrill.report.allure import RunLabels
    from stackdrill.report.model import Report

pytest_plugins = ("stackdrill.plugin_labs", "stackdrill.plugin_reports")

INFRASTRUCTURE_EXIT = InfrastructureError.exit_code  # 3, as on every stackdrill command

MARKERS = (
    "sim: runs on the simulated backend",
    "netns: needs root and real kernel network namespaces",
    "vm: boots real guests (slow); in every CI run (scripts/test.sh)",
    "vm_peer: boots real guests for a peer suite's situation; run by scripts/test-vm-peer.sh",
    "slow: takes more than a few seconds",
    "backends(*names): the backends this scenario can run on; skipped with a reason on others",
    "topology(path): the topology the `lab` fixture brings up (on a module: also `module_lab`)",
)
INFRA_PROPERTY = "stackdrill_infrastructure_error"


def pytest_addoption(parser: pytest.Parser) -> None:
    """One group, the CLI's spellings with a `lab-` prefix (`--backend` is `--lab-backend`),
    each also settable as an ini value (`lab_backend = netns` in pytest.ini/pyproject)."""
    group = parser.getgroup(
        "stackdrill", "stackdrill disaster drills (the CLI's options with a lab- prefix; "
        "each also an ini value)")
    group.addoption("--lab-backend", default=None, metavar="NAME",
                    help="backend every lab and drill runs on: sim, netns, libvirt, vagrant "
                         "(default: sim; ini: lab_backend). Scenarios marked "
                         "@pytest.mark.backends(...) without it are skipped")
    group.addoption("--lab-topology", default=None, metavar="PATH",
                    help="topology file of the `lab`, `module_lab` and `session_lab` "
                         "fixtures when no @pytest.mark.topology(path) names one "
                         "(ini: lab_topology)")
    group.addoption("--lab-seed", type=int, default=None, metavar="N",
                    help="seed of every drill and lab (default: each drill's own, "
                         f"{DEFAULT_SEED} for a lab fixture; ini: lab_seed)")
    group.addoption("--lab-keep", action="store_true", default=False,
                    help="leave labs standing after their test (or module, or session) "
                         "for inspection; remove them with `stackdrill down`")
    parser.addini("lab_backend", "default backend for labs (--lab-backend)", default="sim")
    parser.addini("lab_topology", "default topology for the lab fixtures (--lab-topology)",
                  default="")
    parser.addini("lab_seed", "default seed (--lab-seed)", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(InfrastructureTally(), "stackdrill-infrastructure-tally")
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    _check_backend_name(config)


def _check_backend_name(config: pytest.Config) -> None:
    """An unknown --lab-backend (a typo: `netsn`) is a usage error (pytest exits 4), never
    a session of skips that exits 0 having run nothing; a known backend this machine
    cannot run still skips each test with its reason."""
    from stackdrill.backends import REGISTRY

    name = option(config, "backend") or "sim"
    if name not in REGISTRY:
        raise pytest.UsageError(f"--lab-backend: unknown backend {str(name)[:40]!r} "
                                f"(known: {', '.join(sorted(REGISTRY))})")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test that failed because its lab was not ready is marked as such (a user property,
    which reaches the xdist controller and the JUnit XML), its reason first in the report."""
    report = yield
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(
            InfrastructureError):
        from stackdrill.report.allure import INFRASTRUCTURE_TRACE

        reason = str(call.excinfo.value)
        report.user_properties.append((INFRA_PROPERTY, reason))
        item.user_properties.append((INFRA_PROPERTY, reason))  # JUnit XML writes these
        report.longrepr = (f"{reason}\n({INFRASTRUCTURE_TRACE}, driven or observed; "
                           f"no verdict about the recovery)\n\n{report.longrepr}")
    return report


def infrastructure_error(report: pytest.TestReport | pytest.CollectReport) -> str | None:
    """The reason when `report` is a test whose lab was not ready, else None (a
    collection error has no user properties: it is never an infrastructure error)."""
    properties = getattr(report, "user_properties", ())
    return next((str(v) for k, v in properties if k == INFRA_PROPERTY), None)


def pytest_report_teststatus(report: pytest.TestReport | pytest.CollectReport,
                             config: pytest.Config
                             ) -> tuple[str, str, tuple[str, dict[str, bool]]] | None:
    if report.failed and infrastructure_error(report) is not None:
        return "infrastructure error", "I", ("INFRA-ERROR", {"yellow": True})
    return None


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    infra = list(terminalreporter.stats.get("infrastructure error", ()))
    if not infra:
        return
    terminalreporter.section("lab not ready (infrastructure errors: no verdict)", yellow=True)
    for report in infra:
        terminalreporter.line(f"INFRA-ERROR {report.nodeid} - {infrastructure_error(report)}")


class InfrastructureTally:
    """Counts the session's failures and how many were labs that were not ready (on the
    xdist controller too: the reports carry the mark), and sets the exit status."""

    def __init__(self) -> None:
        self.failed = 0
        self.infrastructure = 0

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self.failed += 1
            self.infrastructure += infrastructure_error(report) is not None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Exit 3 (stackdrill's infrastructure error) when every failure was a lab that
        was not ready: CI can tell a busy runner from a failed recovery."""
        if (self.infrastructure and self.failed == self.infrastructure
                and session.exitstatus == pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = INFRASTRUCTURE_EXIT


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = option(config, "backend") or "sim"
    for item in items:
        marker = item.get_closest_marker("backends")
        if marker is not None and backend not in marker.args:
            item.add_marker(pytest.mark.skip(
                reason=f"scenario runs on {', '.join(marker.args)}; backend is {backend}"))


@pytest.fixture
def run_drill(request: pytest.FixtureRequest, lab_backend: str,
              lab_seed: int | None) -> Callable[..., Any]:
    """Run a drill on the chosen backend and return its Report: a path (a relative one
    from the test file's directory, then from the current one) or a shipped drill's name
    (`run_drill("nova-host-failure")`). Skips with the reason when the backend cannot
    realise the drill. Records backend, seed, drill and trace on the test (JUnit
    properties; Allure parameters, labels and steps when recording)."""
    from stackdrill.backends import backend_class
    from stackdrill.drill import load_drill
    from stackdrill.drill.judge import judge
    from stackdrill.drill.runner import execute
    from stackdrill.report.allure import RunLabels

    def runner(path: str | Path, *, seed: int | None = None, backend: str | None = None) -> Any:
        __tracebackhide__ = True  # a skip (and -rs) points at the scenario's line, not here
        drill = load_drill(path, base=request.path.parent)  # a shipped drill's name, too
        chosen = backend or lab_backend
        effective = seed if seed is not None else lab_seed
        if effective is None:
            effective = drill.spec.seed
        # A lab that lives in this process only (the simulator) takes the name `stackdrill
        # run` gives it: the lab name is in the trace, and the trace hash of a scenario must
        # equal that of the command its failure message prints. Real labs need unique names.
        in_process = backend_class(chosen).capabilities.in_process
        name = (f"{drill.name}-{effective}" if in_process
                else lab_name(request.node.nodeid, drill.name))
        run = RunLabels(backend=chosen, seed=effective, drill=drill.name)
        record_run(request.node, run)  # before the run: an infrastructure error has them too
        try:
            finished = execute(drill, backend=chosen, seed=effective, lab_name=name,
                               keep=bool(request.config.getoption("--lab-keep")))
        except (UnsupportedError, BackendUnavailableError) as exc:
            pytest.skip(str(exc))
        report = judge(finished)
        _record_report(request.node, run, report, drill)
        return report

    return runner


def _record_report(node: pytest.Item, run: RunLabels, report: Report, drill: Drill) -> None:
    """The finished run's trace and expected damage on its test; its Allure steps."""
    from stackdrill.report.allure import attach_report, expected_damage

    record_run(node, run, report.trace_sha256)
    for what in expected_damage(report, drill.spec.expect).values():
        node.user_properties.append((DAMAGE_PROPERTY, what))
    attach_report(report, drill.topology, drill.spec.expect)
