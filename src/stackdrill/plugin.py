"""The pytest plugin: `--lab-*` options, markers, and the `lab`, `module_lab`,
`session_lab`, `faults` and `run_drill` fixtures. Registered through the `pytest11` entry
point, so `pytest scenarios/` finds it.

Labs are always torn down at the end of their scope (kept with --lab-keep), even when a
test fails; their names carry the xdist worker id so `-n auto` never collides.

A test whose lab could not be brought up, driven or observed (an InfrastructureError, e.g.
"lab not ready: ...") says nothing about the recovery: it is reported as INFRA-ERROR, not
FAILED, and a session whose only non-passing tests are such errors exits 3, like the CLI.

Every test that runs a lab records its backend, seed (and a drill's name and trace hash)
as JUnit properties (`stackdrill_backend`, ...) and, with `--alluredir`, as Allure
parameters and labels; the Allure results also get `environment.properties` and
`categories.json` (see stackdrill.report.allure).
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from stackdrill.api import Lab
from stackdrill.backends import backend_class, lifetime
from stackdrill.errors import BackendUnavailableError, InfrastructureError, UnsupportedError
from stackdrill.faults import Fault, FaultAdapter
from stackdrill.report.allure import RunLabels

if TYPE_CHECKING:
    from stackdrill.drill.model import Drill
    from stackdrill.report.model import Report

INFRASTRUCTURE_EXIT = InfrastructureError.exit_code  # 3, as on every stackdrill command
DEFAULT_SEED = 1  # the seed of a lab fixture's lab when neither --lab-seed nor lab_seed is set

MARKERS = (
    "sim: runs on the simulated backend",
    "netns: needs root and real kernel network namespaces",
    "vm: boots real guests (slow); in every CI run (scripts/test.sh)",
    "vm_peer: boots real guests for a peer suite's situation; run by scripts/test-vm-peer.sh",
    "slow: takes more than a few seconds",
    "backends(*names): the backends this scenario can run on; skipped with a reason on others",
    "topology(path): the topology the `lab` fixture brings up (on a module: also `module_lab`)",
)
LAB_FIXTURES = ("lab", "module_lab", "session_lab")

INFRA_PROPERTY = "stackdrill_infrastructure_error"
BACKEND_PROPERTY = "stackdrill_backend"
SEED_PROPERTY = "stackdrill_seed"
DRILL_PROPERTY = "stackdrill_drill"
TRACE_PROPERTY = "stackdrill_trace_sha256"
DAMAGE_PROPERTY = "stackdrill_expected_damage"
RUNS = pytest.StashKey[int]()  # lab runs recorded for a test so far


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
    alluredir = getattr(config.option, "allure_report_dir", None)
    if alluredir and not config.option.collectonly:
        _start_allure(config, Path(alluredir))


def _start_allure(config: pytest.Config, alluredir: Path) -> None:
    """Register the expected-damage message where results are written (every xdist
    worker) and, on the process that sees the whole session, the session files."""
    import allure_commons

    from stackdrill.report.allure import expected_damage_plugin

    plugin = expected_damage_plugin()
    allure_commons.plugin_manager.register(plugin)
    config.add_cleanup(lambda: allure_commons.plugin_manager.unregister(plugin))
    if not hasattr(config, "workerinput"):  # not an xdist worker
        config.pluginmanager.register(AllureSessionFiles(alluredir),
                                      "stackdrill-allure-session")


def _check_backend_name(config: pytest.Config) -> None:
    """An unknown --lab-backend (a typo: `netsn`) is a usage error (pytest exits 4), never
    a session of skips that exits 0 having run nothing; a known backend this machine
    cannot run still skips each test with its reason."""
    from stackdrill.backends import REGISTRY

    name = _option(config, "backend") or "sim"
    if name not in REGISTRY:
        raise pytest.UsageError(f"--lab-backend: unknown backend {str(name)[:40]!r} "
                                f"(known: {', '.join(sorted(REGISTRY))})")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A test that failed because its lab was not ready is marked as such (a user property,
    which reaches the xdist controller and the JUnit XML), its reason first in the report."""
    from stackdrill.report.allure import INFRASTRUCTURE_TRACE

    report = yield
    if report.failed and call.excinfo is not None and call.excinfo.errisinstance(
            InfrastructureError):
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


class AllureSessionFiles:
    """Writes `categories.json` and `environment.properties` into the Allure results at
    the end of the session, with the backends the session's tests actually ran on."""

    def __init__(self, alluredir: Path) -> None:
        self.alluredir = alluredir
        self.backends: set[str] = set()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.backends.update(str(v) for k, v in report.user_properties
                             if k == BACKEND_PROPERTY)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from stackdrill.report.allure import write_categories, write_environment

        self.alluredir.mkdir(parents=True, exist_ok=True)
        write_categories(self.alluredir)
        write_environment(self.alluredir, session_environment(session.config, self.backends))


def session_environment(config: pytest.Config, backends: set[str]) -> dict[str, str]:
    """What Allure's Environment widget shows: which stackdrill, which commit of the
    checkout under test, which backends, on which Python and machine."""
    from stackdrill import __version__

    chosen = _option(config, "backend") or "sim"
    return {
        "stackdrill": __version__,
        "commit": _commit(config.rootpath) or "unknown",
        "lab_backend": str(chosen),
        "backends": ", ".join(sorted(backends)) or "(no lab ran)",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "machine": f"{platform.system()} {platform.release()} {platform.machine()}",
    }


def _commit(root: Path) -> str:
    """The commit under test: as CI names it, else asked of git; "" if neither knows."""
    for var in ("STACKDRILL_COMMIT", "GITHUB_SHA", "CI_COMMIT_SHA"):
        if os.environ.get(var):
            return os.environ[var]
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """A test on a lab fixture records that lab's backend and seed (JUnit properties,
    Allure parameters), also when the lab could not be brought up."""
    problem = _misplaced_topology(item)
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    try:
        return (yield)
    finally:
        if any(name in getattr(item, "fixturenames", ()) for name in LAB_FIXTURES):
            seed = _seed(item.config)
            record_run(item, RunLabels(backend=_backend(item.config),
                                       seed=DEFAULT_SEED if seed is None else seed))


def _misplaced_topology(item: pytest.Item) -> str | None:
    """A topology marked on a test (or class) that uses `module_lab` would be silently
    ignored: the module's lab comes from the module's mark."""
    if "module_lab" not in getattr(item, "fixturenames", ()):
        return None
    own = item.get_closest_marker("topology")
    module = item.getparent(pytest.Module)
    shared = module.get_closest_marker("topology") if module is not None else None
    if own is not None and (shared is None or own.args != shared.args):
        return (f"{item.nodeid}: @pytest.mark.topology on a test has no effect on "
                "`module_lab`: mark the module (pytestmark = pytest.mark.topology(path)) "
                "or use the `lab` fixture")
    return None


def record_run(node: pytest.Item, run: RunLabels, trace_sha256: str = "") -> None:
    """Name a lab run on its test: JUnit properties (record_property's way, so they reach
    the XML under xdist too) and, when recording, Allure parameters and labels."""
    from stackdrill.report.allure import label_run, label_trace

    first = node.stash.get(RUNS, 0) == 0
    if not trace_sha256:
        node.stash[RUNS] = node.stash.get(RUNS, 0) + 1
        node.user_properties += [(BACKEND_PROPERTY, run.backend), (SEED_PROPERTY, run.seed)]
        if run.drill:
            node.user_properties.append((DRILL_PROPERTY, run.drill))
        label_run(run, first=first)
        return
    node.user_properties.append((TRACE_PROPERTY, trace_sha256))
    label_trace(run.backend, trace_sha256, first=node.stash.get(RUNS, 0) == 1)


def _backend(config: pytest.Config) -> str:
    return str(_option(config, "backend") or "sim")


def _seed(config: pytest.Config) -> int | None:
    value = _option(config, "seed")
    return int(value) if value is not None else None


@pytest.fixture(scope="session")
def lab_backend(request: pytest.FixtureRequest) -> str:
    """The backend name chosen with --lab-backend (or the `lab_backend` ini value; sim)."""
    return _backend(request.config)


@pytest.fixture(scope="session")
def lab_seed(request: pytest.FixtureRequest) -> int | None:
    """The seed chosen with --lab-seed (or the `lab_seed` ini value), None when neither is
    set: `run_drill` then uses each drill's own seed and the lab fixtures use 1. The same
    seed replays the same simulated run, trace hash and all."""
    return _seed(request.config)


def _lab_name(nodeid: str, stem: str) -> str:
    """A lab name unique per test (or module) and xdist worker, and the same in every
    process: a sim lab's name is in its trace, so the trace hash must not depend on
    Python's per-process salted `hash()`."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digest = int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:4], "big") % 10_000
    return f"{stem[:18]}-{worker}-{digest}".lower().replace("_", "-")


def _bring_up(request: pytest.FixtureRequest, path: object, where: str) -> Iterator[Lab]:
    """Bring up the topology at `path` on the chosen backend for the fixture's scope and
    tear it down at its end, pass or fail (leave it standing, on purpose, with --lab-keep)."""
    from stackdrill.topology import load_topology

    if not path:
        pytest.skip(f"no topology: {where}")
    backend = _backend(request.config)
    cls = backend_class(backend)
    reason = cls.available()
    if reason is not None:
        pytest.skip(f"backend {backend} unavailable: {reason}")
    topology = load_topology(Path(str(path)))
    seed = _seed(request.config)
    created = cls().create(topology, lab_name=_lab_name(request.node.nodeid, topology.name),
                           seed=DEFAULT_SEED if seed is None else seed)
    try:
        yield created
    finally:
        if request.config.getoption("--lab-keep"):
            created.keep()  # recorded as kept: no other run (nor this one's exit) removes it
            lifetime.unregister(created)
        else:
            created.destroy()


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """A lab of its own for this test, from @pytest.mark.topology(path) on the test, its
    class or module, else --lab-topology; torn down after the test, pass or fail."""
    marker = request.node.get_closest_marker("topology")
    path = marker.args[0] if marker else _option(request.config, "topology")
    yield from _bring_up(request, path, "use @pytest.mark.topology(path) or --lab-topology")


@pytest.fixture(scope="module")
def module_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """One lab shared by every test of the module that asks for it (Molecule's scenario,
    testinfra's host): from the module's `pytestmark = pytest.mark.topology(path)`, else
    --lab-topology; brought up before the first such test, torn down after the module's
    last, pass or fail. Between tests only faults injected through `faults` are healed;
    what the tests did to the lab (moved instances, written data, lab time) carries over."""
    marker = request.node.get_closest_marker("topology")
    path = marker.args[0] if marker else _option(request.config, "topology")
    yield from _bring_up(request, path, "mark the module (pytestmark = "
                         "pytest.mark.topology(path)) or use --lab-topology")


@pytest.fixture(scope="session")
def session_lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """One lab for the whole session (per xdist worker), from --lab-topology (or the
    `lab_topology` ini value); torn down when the session ends. Isolation as `module_lab`."""
    yield from _bring_up(request, _option(request.config, "topology"),
                         "session_lab needs --lab-topology (or the lab_topology ini value)")


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
def faults(request: pytest.FixtureRequest) -> Iterator[Faults]:
    """Inject faults into the test's lab (`lab`, or `module_lab`/`session_lab` when the
    test asks for one): `faults.inject({"kind": "host_crash", "host": "bob"})` takes a
    Fault or its dict form and returns the Fault, `faults.heal(f)` heals one. Every fault
    still in force is healed when the test ends, pass or fail, so the next test on a
    shared lab starts without them (faults injected with `lab.inject` are not tracked)."""
    name = next((n for n in ("module_lab", "session_lab") if n in request.fixturenames),
                "lab")
    helper = Faults(request.getfixturevalue(name))
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
    realise the drill. Records backend, seed, drill and trace on the test (JUnit
    properties; Allure parameters, labels and steps when recording)."""
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
        name = (f"{drill.name}-{effective}" if in_process
                else _lab_name(request.node.nodeid, drill.name))
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
