"""The contract suite's one fixture: `lab`, the same topology on every backend.

As pytest-testinfra's own backend tests do, each test is written once and runs on every
backend (`test_x[sim]`, `test_x[libvirt]`, `test_x[netns]`); a backend this machine cannot
run is skipped with its reason. The test of a declared fault runs once per kind the
backend declares (`[netns-link_down]`).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from contract_support import (
    BACKENDS,
    FAULTS,
    NATURE,
    Nature,
    create,
    declared_faults,
    unavailable,
)

from stackdrill.api import Lab

# the repository's markers, so `-m netns` or `-m sim` selects a backend's part too
MARKS = {"sim": pytest.mark.sim, "netns": pytest.mark.netns}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "lab" not in metafunc.fixturenames:
        return
    if "declared_fault" in metafunc.fixturenames:
        cases = [pytest.param(backend, FAULTS[kind], id=f"{backend}-{kind}",
                              marks=MARKS.get(backend, ()))
                 for backend in BACKENDS for kind in sorted(declared_faults(backend))]
        metafunc.parametrize(("lab", "declared_fault"), cases, indirect=["lab"])
        return
    metafunc.parametrize("lab", [pytest.param(b, id=b, marks=MARKS.get(b, ()))
                                 for b in BACKENDS], indirect=True)


@pytest.fixture
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The contract topology brought up on the backend named by the parameter, torn down
    after the test."""
    backend: str = request.param
    reason = unavailable(backend)
    if reason is not None:
        pytest.skip(f"{backend}: {reason}")
    created = create(backend)
    try:
        yield created
    finally:
        created.destroy()


@pytest.fixture
def nature(lab: Lab) -> Nature:
    """What the lab's backend cannot do by its nature, with the reasons."""
    return NATURE[lab.backend]
