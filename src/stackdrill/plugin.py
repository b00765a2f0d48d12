"""The pytest plugin: `--lab-*` options, markers, and the `lab`, `faults` and `run_drill`
fixtures. Registered through the `pytest11` entry point, so `pytest scenarios/` finds it.

Labs are always torn down (kept with --lab-keep), even when a test fails; their
names carry the xdist worker id so `-n auto` never collides.

A test whose lab could not be brought up, driven or observed (an InfrastructureError, e.g.
"lab not ready: ...") says nothing about the recovery: it is reported as INFRA-ERROR, not
FAILED, and a session whose only non-passing tests are such errors exits 3, like the CLI.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from stackdrill.api import Lab
from stackdrill.backends import backend_class
from stackdrill.errors import BackendUnavailableError, InfrastructureError, UnsupportedError
from stackdrill.faults import Fault, FaultAdapter

INFRASTRUCTURE_EXIT = InfrastructureError.exit_code  # 3, as on every stackdrill command

MARKERS = (
    "sim: runs on the simulated backend",
    "netns: needs root and real kernel network namespaces",
    "vm: boots real guests (slow); in every CI run (scripts/test.sh)",
    "vm_peer: boots real guests for a peer suite's situation; run by scripts/test-vm-peer.sh",
    "slow: takes more than a few seconds",
    "backends(*names): the backends this scenario can run on; skipped with a reason on others",
    "topology(path): the topology the `lab` fixture brings up",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stackdrill", "stackdrill disaster drills")
    group.addoption("--lab-backend", default=None,
                    help="backend the labs run on (default: sim; ini: lab_backend)")
    group.addoption("--lab-topology", default=None,
                    help="topology file for the `lab` fixture (ini: lab_topology)")
    group.addoption("--lab-seed", type=int, default=None,
                    help="seed of every drill (default: each drill's own; ini: lab_seed)")
    group.addoption("--lab-keep", action="store_true", default=False,
                    help="leave labs standing after the test for inspection")
    parser.addini("lab_backend", "default backend for labs", default="sim")
    parser.addini("lab_topology", "default topology for the `lab` fixture", default="")
    parser.addini("lab_seed", "default seed", default="")


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(InfrastructureTally(), "stackdrill-infrastructure-tally")
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    _check_backend_name(config)
    _register_testinfra_backends()


def _check_backend_name(config: pytest.Config) -> None:
    """An unknown --lab-backend (a typo: `netsn`) is a usage error (pytest exits 4), never
    a session of skips that exits 0 having run nothing; a known backend this machine
    cannot run still skips each test with its reason."""
    from stackdrill.backends import REGISTRY

    name = _option(config, "backend") or "sim"
    if name not in REGISTRY:
        raise pytest.UsageError(f"--lab-backend: unknown backend {str(name)[:40]!r} "
                                f"(known: {', '.join(sorted(REGISTRY))})")


INFRA_PROPERTY = "stackdrill_infrastructure_error"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test that failed because its lab was not ready is marked as such (a user property,
    which reaches the xdist controller and the JUnit XML), its reason first in the report."""
    report = yield
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(
            InfrastructureError):
        reason = str(call.excinfo.value)
        report.user_properties.append((INFRA_PROPERTY, reason))
        item.user_properties.append((INFRA_PROPERTY, reason))  # JUnit XML writes these
        report.longrepr = (f"{reason}\n(infrastructure error: the lab could not be brought up, "
                           f"driven or observed; no verdict about the recovery)\n\n"
                           f"{report.longrepr}")
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


def _register_testinfra_backends() -> None:
    """`netns://NAMESPACE` host specs for testinfra, when testinfra and pyroute2 import."""
    try:
        from stackdrill.backends.netns.testinfra import register
    except ImportError:
        return
    register()


def _option(config: pytest.Config, name: str) -> Any:
    value = config.getoption(f"--lab-{name}")
    if value is None:
        value = config.getini(f"lab_{name}") or None
    return value


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = _option(config, "backend") or "sim"
    for item in items:
        marker = item.get_closest_marker("backends")
        if marker is not None and backend not in marker.args:
            item.add_marker(pytest.mark.skip(
                reason=f"scenario runs on {', '.join(marker.args)}; backend is {backend}"))


@pytest.fixture(scope="session")
def lab_backend(request: pytest.FixtureRequest) -> str:
    """The backend name chosen with --lab-backend."""
    name: str = _option(request.config, "backend") or "sim"
    return name


@pytest.fixture(scope="session")
def lab_seed(request: pytest.FixtureRequest) -> int | None:
    value = _option(request.config, "seed")
    return int(value) if value is not None else None


def _lab_name(request: pytest.FixtureRequest, stem: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digest = abs(hash(request.node.nodeid)) % 10_000
    return f"{stem[:18]}-{worker}-{digest}".lower().replace("_", "-")


@pytest.fixture
def lab(request: pytest.FixtureRequest, lab_backend: str, lab_seed: int | None) -> Iterator[Lab]:
    """A lab built from @pytest.mark.topology(path) or --lab-topology; always torn down."""
    from stackdrill.topology import load_topology

    marker = request.node.get_closest_marker("topology")
    path = marker.args[0] if marker else _option(request.config, "topology")
    if not path:
        pytest.skip("no topology: use @pytest.mark.topology(path) or --lab-topology")
    cls = backend_class(lab_backend)
    reason = cls.available()
    if reason is not None:
        pytest.skip(f"backend {lab_backend} unavailable: {reason}")
    topology = load_topology(Path(str(path)))
    created = cls().create(topology, lab_name=_lab_name(request, topology.name),
                           seed=lab_seed if lab_seed is not None else 1)
    try:
        yield created
    finally:
        if not request.config.getoption("--lab-keep"):
            created.destroy()


class Faults:
    """Injects faults into a lab and heals whatever is still in force at teardown."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.active: list[Fault] = []

    def inject(self, fault: Fault | dict[str, Any]) -> Fault:
        value = FaultAdapter.validate_python(fault) if isinstance(fault, dict) else fault
        self.lab.inject(value)
        self.active.append(value)
        return value

    def heal(self, fault: Fault) -> None:
        self.lab.heal(fault)
        self.active.remove(fault)

    def heal_all(self) -> None:
        for fault in reversed(list(self.active)):
            self.heal(fault)


@pytest.fixture
def faults(lab: Lab) -> Iterator[Faults]:
    helper = Faults(lab)
    try:
        yield helper
    finally:
        helper.heal_all()


@pytest.fixture
def run_drill(request: pytest.FixtureRequest, lab_backend: str,
              lab_seed: int | None) -> Callable[..., Any]:
    """Run a drill on the chosen backend and return its Report: a path (a relative one
    from the test file's directory, then from the current one) or a shipped drill's name
    (`run_drill("nova-host-failure")`). Skips with the reason when the backend cannot
    realise the drill. Attaches the report to Allure when active."""
    from stackdrill.drill import load_drill
    from stackdrill.drill.judge import judge
    from stackdrill.drill.runner import execute

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
        name = f"{drill.name}-{effective}" if in_process else _lab_name(request, drill.name)
        try:
            finished = execute(drill, backend=chosen, seed=effective, lab_name=name,
                               keep=bool(request.config.getoption("--lab-keep")))
        except (UnsupportedError, BackendUnavailableError) as exc:
            pytest.skip(str(exc))
        report = judge(finished)
        from stackdrill.report.allure import attach_report

        attach_report(report, drill.topology)
        return report

    return runner
