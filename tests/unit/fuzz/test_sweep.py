"""Sweeping seeds in this process and on Dask: the same seeds give the same verdicts, each
seed exactly once, whatever runs them."""

from __future__ import annotations

import time

import pytest
from distributed import Scheduler

from stackdrill.errors import InputError
from stackdrill.fuzz.sweep import (
    InProcess,
    OnDask,
    SeedResult,
    Verdict,
    check_scheduler,
    dask_client,
    sweep_one,
)
from stackdrill.fuzz.version import code_version


def test_sweep_one_reduces_a_failing_seed_to_its_verdict() -> None:
    """Seed 1716 fails (a known bug, scenarios/test_random_drills.py): the stored result
    names the failed check with its detail, the trace, and the code that ran it."""
    result = sweep_one(1716)
    assert result.verdict is Verdict.FAIL and result.failed == ("exactly_once_or_declared",)
    assert set(result.details) == {"exactly_once_or_declared"} and result.details[
        "exactly_once_or_declared"]
    assert len(result.trace_sha256) == 64 and result.version == code_version().key


def test_dask_threads_return_every_seed_once_with_the_in_process_verdicts() -> None:
    """More seeds than the Dask window (8 for two threads), so the window refills: every
    seed comes back exactly once with the verdict and trace the in-process sweep gives."""
    seeds = list(range(1710, 1722))
    here = {r.seed: r for r in InProcess().run(seeds)}
    with dask_client(jobs=2, processes=False) as client:
        runner = OnDask(client)
        assert runner.workers == 2
        there = list(runner.run(seeds))
    assert sorted(r.seed for r in there) == seeds
    assert all(r.same_verdict(here[r.seed]) for r in there)
    assert here[1716].verdict is Verdict.FAIL


def test_stopping_early_cancels_the_outstanding_tasks() -> None:
    """A consumer that stops (Ctrl-C) leaves no task running on the cluster."""
    with dask_client(jobs=1, processes=False) as client:
        results = OnDask(client).run(range(30))
        first: SeedResult = next(results)
        results.close()
        assert first.seed in range(30)
        deadline = time.monotonic() + 30
        while client.run_on_scheduler(_task_count) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert client.run_on_scheduler(_task_count) == 0  # cancelled and forgotten


def _task_count(dask_scheduler: Scheduler) -> int:
    return len(dask_scheduler.tasks)


@pytest.mark.parametrize("url", ["tcp://10.0.0.5:8786", "tls://sched.example.org:8786",
                                 "tcp://[::1]:8786"])
def test_a_scheduler_address_is_scheme_host_and_port(url: str) -> None:
    assert check_scheduler(url) == url


@pytest.mark.parametrize(("url", "why"), [
    ("http://h:8786", "expected tcp://"), ("h:8786", "expected tcp://"),
    ("inproc://x", "expected tcp://"), ("tcp://h", "needs a host and a port"),
    ("tcp://:8786", "needs a host and a port"), ("tcp://h:99999", "out of range"),
    ("tcp://h:0", "needs a host and a port"), ("tcp://h:8786/x", "only scheme, host and port"),
    ("tcp://u@h:8786", "only scheme, host and port"), ("tcp://h:port", "Port"),
])
def test_anything_else_is_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(InputError) as raised:
        check_scheduler(url)
    assert raised.value.exit_code == 2 and why in str(raised.value)
    assert str(raised.value).startswith("command line: --scheduler: ")
