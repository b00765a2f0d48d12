"""What CI sees of the labs a test ran: JUnit properties (`stackdrill_backend`,
`stackdrill_seed`, `stackdrill_drill`, `stackdrill_trace_sha256`, ...) on each test case,
and with `--alluredir` Allure parameters and labels, the expected-damage message, and the
session's `categories.json` and `environment.properties` (see stackdrill.report.allure).
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from stackdrill.plugin_labs import DEFAULT_SEED, LAB_FIXTURES, chosen_backend, chosen_seed

if TYPE_CHECKING:  # report.allure imports the reports' model, checks and recovery engine
    from stackdrill.report.allure import RunLabels

BACKEND_PROPERTY = "stackdrill_backend"
SEED_PROPERTY = "stackdrill_seed"
DRILL_PROPERTY = "stackdrill_drill"
TRACE_PROPERTY = "stackdrill_trace_sha256"
DAMAGE_PROPERTY = "stackdrill_expected_damage"
RUNS = pytest.StashKey[int]()  # lab runs recorded for a test so far


def pytest_configure(config: pytest.Config) -> None:
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """A test on a lab fixture records that lab's backend and seed (JUnit properties,
    Allure parameters), also when the lab could not be brought up."""
    try:
        return (yield)
    finally:
        if any(name in getattr(item, "fixturenames", ()) for name in LAB_FIXTURES):
            record_run(item, _lab_run(item))


def _lab_run(item: pytest.Item) -> RunLabels:
    """The lab fixtures' backend and seed: the `lab_backend`/`lab_seed` fixtures' values
    (a conftest may override them), the options' when setup failed before them."""
    values = getattr(item, "funcargs", {})
    backend = values.get("lab_backend", chosen_backend(item.config))
    seed = values.get("lab_seed", chosen_seed(item.config))
    from stackdrill.report.allure import RunLabels

    return RunLabels(backend=str(backend), seed=DEFAULT_SEED if seed is None else int(seed))


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

    return {
        "stackdrill": __version__,
        "commit": _commit(config.rootpath) or "unknown",
        "lab_backend": chosen_backend(config),
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
