"""Sweep a range of random-drill seeds, in this process or on Dask distributed.

`run_seed` is pure (a seed gives the same drill, trace and verdict anywhere), so a seed is
a task: `sweep_one` runs it and returns a small picklable `SeedResult`. `InProcess` runs
the tasks one after another here; `OnDask` hands them to a Dask client — a LocalCluster of
worker processes (`-j N`) or an existing scheduler (`--scheduler tcp://host:8786`) — with
at most a window of tasks outstanding, so a sweep of 100000 seeds neither floods the
scheduler nor loses more than the window when stopped. Results come back in the order
they finish; the caller stores each one at once (the checkpoint).
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from stackdrill.errors import BackendUnavailableError, InfrastructureError, InputError, Problem
from stackdrill.fuzz.version import code_version

if TYPE_CHECKING:
    from distributed import Client

TARGET = "random-drill"  # what a stored result ran (one fuzz target so far)
PARAMETERS = '{"backend": "sim"}'  # the target's parameters, canonical JSON
WINDOW_PER_WORKER = 4  # tasks outstanding per Dask worker
# A drill is not thread-safe (alembic keeps its migration context in module globals, and
# each drill's engine migrates its inventory), so a Dask worker with several threads runs
# one seed at a time; start workers with `--nthreads 1` and use processes for parallelism.
ONE_DRILL_PER_PROCESS = threading.Lock()
SCHEMES = ("tcp", "tls")


class Verdict(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class SeedResult:
    """One seed's verdict as a sweep stores it; identical wherever the seed ran, except
    for `duration_s` and `worker`."""

    seed: int
    verdict: Verdict
    topology: str
    failed: tuple[str, ...]  # names of the checks that failed, sorted
    details: dict[str, str] = field(default_factory=dict)  # failed check -> its detail
    trace_sha256: str = ""
    version: str = ""  # CodeVersion.key of the code that ran it
    duration_s: float = 0.0
    worker: str = ""  # host:pid that ran it

    def same_verdict(self, other: SeedResult) -> bool:
        """Equal apart from where and how fast it ran."""
        return (self.seed, self.verdict, self.topology, self.failed, self.details,
                self.trace_sha256) == (other.seed, other.verdict, other.topology, other.failed,
                                       other.details, other.trace_sha256)


def sweep_one(seed: int, log_level: int | None = None) -> SeedResult:
    """Run one random drill and reduce its outcome to what a sweep stores (a Dask task).
    `log_level`, when given, is set on the stackdrill loggers first: a worker process
    has no CLI to configure them, and a sweep's thousands of engine warnings are noise
    next to the verdicts."""
    from stackdrill.fuzz.drive import run_seed

    if log_level is not None:
        logging.getLogger("stackdrill").setLevel(log_level)
    with ONE_DRILL_PER_PROCESS:
        started = time.perf_counter()
        outcome = run_seed(seed)
    return SeedResult(
        seed=seed, verdict=Verdict.PASS if outcome.ok else Verdict.FAIL,
        topology=outcome.drill.topology.name, failed=tuple(outcome.failed),
        details={c.name: c.detail for c in outcome.checks if not c.ok},
        trace_sha256=outcome.trace_sha256, version=code_version().key,
        duration_s=time.perf_counter() - started,
        worker=f"{socket.gethostname()}:{os.getpid()}")


Task = Callable[[int, int | None], SeedResult]  # (seed, log level) -> its result


class Runner(Protocol):
    workers: int

    def run(self, seeds: Iterable[int]) -> Iterator[SeedResult]: ...


class InProcess:
    """Seeds one after another in this process (`-j 1`): no start-up cost."""

    workers = 1

    def __init__(self, log_level: int | None = None) -> None:
        self.log_level = log_level

    def run(self, seeds: Iterable[int]) -> Iterator[SeedResult]:
        for seed in seeds:
            yield sweep_one(seed, self.log_level)


class OnDask:
    """Seeds as tasks on a Dask client, at most WINDOW_PER_WORKER per worker in flight;
    when the caller stops early (Ctrl-C), the outstanding ones are cancelled."""

    def __init__(self, client: Client, log_level: int | None = None,
                 task: Task | None = None) -> None:
        self.client = client
        self.log_level = log_level
        self.task: Task = sweep_one if task is None else task  # the bench swaps in a stand-in
        threads = client.nthreads()
        self.workers = max(1, len(threads))
        self.threads_per_worker = max(threads.values(), default=1)

    def run(self, seeds: Iterable[int]) -> Iterator[SeedResult]:
        from distributed import as_completed

        pending = iter(seeds)
        window = max(8, WINDOW_PER_WORKER * self.workers)
        first = [self._submit(s) for _, s in zip(range(window), pending, strict=False)]
        if not first:
            return
        running = as_completed(first)
        try:
            for future in running:
                result: SeedResult = future.result()
                future.release()
                nxt = next(pending, None)
                if nxt is not None:
                    running.add(self._submit(nxt))
                yield result
        finally:
            self.client.cancel(list(running.futures))

    def _submit(self, seed: int):  # type: ignore[no-untyped-def]  # a distributed.Future
        """The key names the code too: on a shared scheduler, sweeps of one seed on two
        commits are two tasks (Dask would hand both clients the first one's result)."""
        return self.client.submit(self.task, seed, self.log_level, pure=False,
                                  key=f"{TARGET}-{code_version().key}-{seed}")


def check_scheduler(url: str) -> str:
    """A Dask scheduler address: tcp:// or tls://, a host and a port, nothing else."""
    def bad(why: str) -> InputError:
        return InputError("command line", [Problem("--scheduler", f"{url[:80]!r}: {why}")])

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad(str(exc)) from None
    if parts.scheme not in SCHEMES:
        raise bad("expected tcp://HOST:PORT or tls://HOST:PORT")
    if not parts.hostname or port is None or port == 0:
        raise bad("needs a host and a port (e.g. tcp://10.0.0.5:8786)")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise bad("only scheme, host and port are allowed")
    return url


@contextmanager
def dask_client(*, jobs: int = 1, scheduler: str | None = None, processes: bool = True,
                log_level: int = logging.ERROR) -> Iterator[Client]:
    """A client to `scheduler`, or to a LocalCluster of `jobs` single-threaded workers
    (worker processes, or threads of this process with processes=False). Dask's own
    logs below `log_level` (its INFO chatter about every connection) are dropped."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise BackendUnavailableError("-j N and --scheduler run on Dask distributed, which is "
                                      "not installed: pip install 'stackdrill[fuzz]'") from None
    logging.getLogger("distributed").setLevel(log_level)

    if scheduler is not None:
        try:
            client = Client(check_scheduler(scheduler), timeout="15s")
        except OSError as exc:
            raise InfrastructureError(f"Dask scheduler {scheduler}: {exc}") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=jobs, threads_per_worker=1, processes=processes,
                      dashboard_address=None, silence_logs=log_level) as cluster, \
            Client(cluster) as client:
        yield client
