"""The lab fixtures of the pytest plugin: `lab` (one per test), `module_lab` and
`session_lab` (one shared by many tests, as Molecule's scenario and testinfra's host are),
`faults`, `lab_seed` and `lab_backend`; and how the `--lab-*` options are read.

Every lab is torn down at the end of its fixture's scope, pass or fail (left standing, on
purpose, with --lab-keep). Between tests on a shared lab only the faults injected through
`faults` are healed; the rest of what a test did carries over.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported where a lab is made: the xdist controller never makes one
    from stackdrill.api import Lab
    from stackdrill.faults import Fault

DEFAULT_SEED = 1  # the seed of a lab fixture's lab when neither --lab-seed nor lab_seed is set
LAB_FIXTURES = ("lab", "module_lab", "session_lab")


def option(config: pytest.Config, name: str) -> Any:
    """`--lab-NAME`, else the `lab_NAME` ini value, else None."""
    value = config.getoption(f"--lab-{name}")
    if value is None:
        value = config.getini(f"lab_{name}") or None
    return value


def chosen_backend(config: pytest.Config) -> str:
    """The backend every lab runs on (sim unless chosen)."""
    return str(option(config, "backend") or "sim")


def chosen_seed(config: pytest.Config) -> int | None:
    """The seed chosen for the session, None to let each drill use its own."""
    value = option(config, "seed")
    return int(value) if value is not None else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Refuse a lab fixture misused before bringing any lab up."""
    problem = _misplaced_topology(item)
    if problem is not None:
        pytest.fail(problem, pytrace=False)


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


@pytest.fixture(scope="session")
def lab_backend(request: pytest.FixtureRequest) -> str:
    """The backend name chosen with --lab-backend (or the `lab_backend` ini value; sim)."""
    return chosen_backend(request.config)


@pytest.fixture(scope="session")
def lab_seed(request: pytest.FixtureRequest) -> int | None:
    """The seed chosen with --lab-seed (or the `lab_seed` ini value), None when neither is
    set: `run_drill` then uses each drill's own seed and the lab fixtures use 1. The same
    seed replays the same simulated run, trace hash and all."""
    return chosen_seed(request.config)


def lab_name(nodeid: str, stem: str) -> str:
    """A lab name unique per test (or module) and xdist worker, and the same in every
    process: a sim lab's name is in its trace, so the trace hash must not depend on
    Python's per-process salted `hash()`."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digest = int.from_bytes(hashlib.sha256(nodeid.encode()).digest()[:4], "big") % 10_000
    return f"{stem[:18]}-{worker}-{digest}".lower().replace("_", "-")


def _bring_up(request: pytest.FixtureRequest, path: object, where: str, backend: str,
              seed: int | None) -> Iterator[Lab]:
    """Bring up the topology at `path` on the chosen backend for the fixture's scope and
    tear it down at its end, pass or fail (leave it standing, on purpose, with --lab-keep)."""
    from stackdrill.backends import backend_class, lifetime
    from stackdrill.topology import load_topology

    if not path:
        pytest.skip(f"no topology: {where}")
    cls = backend_class(backend)
    reason = cls.available()
    if reason is not None:
        pytest.skip(f"backend {backend} unavailable: {reason}")
    topology = load_topology(Path(str(path)))
    created = cls().create(topology, lab_name=lab_name(request.node.nodeid, topology.name),
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
def lab(request: pytest.FixtureRequest, lab_backend: str, lab_seed: int | None
        ) -> Iterator[Lab]:
    """A lab of its own for this test, from @pytest.mark.topology(path) on the test, its
    class or module, else --lab-topology; torn down after the test, pass or fail."""
    marker = request.node.get_closest_marker("topology")
    path = marker.args[0] if marker else option(request.config, "topology")
    yield from _bring_up(request, path, "use @pytest.mark.topology(path) or --lab-topology",
                         lab_backend, lab_seed)


@pytest.fixture(scope="module")
def module_lab(request: pytest.FixtureRequest, lab_backend: str, lab_seed: int | None
               ) -> Iterator[Lab]:
    """One lab shared by every test of the module that asks for it (Molecule's scenario,
    testinfra's host): from the module's `pytestmark = pytest.mark.topology(path)`, else
    --lab-topology; brought up before the first such test, torn down after the module's
    last, pass or fail. Between tests only faults injected through `faults` are healed;
    what the tests did to the lab (moved instances, written data, lab time) carries over."""
    marker = request.node.get_closest_marker("topology")
    path = marker.args[0] if marker else option(request.config, "topology")
    yield from _bring_up(request, path, "mark the module (pytestmark = "
                         "pytest.mark.topology(path)) or use --lab-topology",
                         lab_backend, lab_seed)


@pytest.fixture(scope="session")
def session_lab(request: pytest.FixtureRequest, lab_backend: str, lab_seed: int | None
                ) -> Iterator[Lab]:
    """One lab for the whole session (per xdist worker), from --lab-topology (or the
    `lab_topology` ini value); torn down when the session ends. Isolation as `module_lab`."""
    yield from _bring_up(request, option(request.config, "topology"),
                         "session_lab needs --lab-topology (or the lab_topology ini value)",
                         lab_backend, lab_seed)


class Faults:
    """Injects faults into a lab and heals whatever is still in force at teardown."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.active: list[Fault] = []

    def inject(self, fault: Fault | dict[str, Any]) -> Fault:
        from stackdrill.faults import FaultAdapter

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
