"""The command's side of a lab keeper: start one (`up`), talk to it (every later command),
stop it (`down`). Every wait is bounded, and a keeper that died or does not answer is an
infrastructure error naming its log, never a verdict."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from stackdrill.api import CommandResult, Observation
from stackdrill.checks import Evidence
from stackdrill.cli.keeper.place import KeeperPlace, KeeperState, age
from stackdrill.cli.keeper.protocol import Call, Event, Failure, KeeperRefused, Value
from stackdrill.cli.labcore import DryRun, Progress
from stackdrill.cli.labstore import LabRecord
from stackdrill.cli.session import LabSession, topology_of
from stackdrill.drill.model import RecoverSpec, Step
from stackdrill.errors import InfrastructureError, LabStateError
from stackdrill.recovery import RecoveryResult
from stackdrill.recovery.dburl import ENV
from stackdrill.waiting import WaitTimeout, wait_until

BRING_UP_S = 3600.0  # a lab of real guests under TCG takes minutes; an hour is a hang
STOP_S = 600.0  # tearing a lab of guests down
ANSWER_S = 600.0  # a look at the lab (a libvirt observation reads every guest)
STEP_S = 1800.0  # a fault or heal step (healing a crashed guest boots it)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _relay(log: Path, shown: int, progress: Callable[[str], None]) -> int:
    """Pass on the keeper's new progress lines; the number of bytes read so far."""
    try:
        with log.open("rb") as f:
            f.seek(shown)
            chunk = f.read()
    except OSError:
        return shown
    complete = chunk[:chunk.rfind(b"\n") + 1]
    for line in complete.decode(errors="replace").splitlines():
        if line.startswith("progress: "):
            progress(line.removeprefix("progress: "))
    return shown + len(complete)


def start(record: LabRecord, progress: Callable[[str], None],
          inventory: str | None = None) -> KeeperState:
    """Start the lab's keeper and wait until the lab is up; on any failure or interruption
    the keeper is stopped (and the lab with it) before the error goes on. `inventory`
    (--inventory) reaches the keeper as the variable it resolves like any other process."""
    place = KeeperPlace(record.name)
    place.create()
    env = dict(os.environ, STACKDRILL_HOME=str(place.home))
    if inventory:
        env[ENV] = inventory
    with place.log.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "stackdrill.cli.keeper", record.name],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env)
    try:
        return _wait_ready(place, proc, progress)
    except BaseException:
        stop(record.name)
        raise


def _wait_ready(place: KeeperPlace, proc: subprocess.Popen[bytes],
                progress: Callable[[str], None]) -> KeeperState:
    """The keeper's state once its lab is up, relaying its progress meanwhile; a keeper
    that failed or exited ends the wait at once, one that takes over BRING_UP_S is a hang."""
    shown = 0

    def ready() -> KeeperState | None:
        nonlocal shown
        shown = _relay(place.log, shown, progress)
        state = place.state()
        if state is not None and state.state == "ready":
            return state
        if state is not None and state.state == "failed":
            raise KeeperRefused(state.error or "the lab could not be brought up",
                                state.exit_code or InfrastructureError.exit_code)
        if proc.poll() is not None:
            raise InfrastructureError(f"lab {place.name}: its keeper exited ({proc.returncode}) "
                                      f"before the lab was up; {place.log}: {_tail(place.log)}")
        return None

    try:
        return wait_until(ready, timeout=BRING_UP_S, interval=0.2,
                          what=f"lab {place.name} up")
    except WaitTimeout:
        raise InfrastructureError(f"lab {place.name}: not up within {BRING_UP_S:.0f}s; "
                                  f"{place.log}: {_tail(place.log)}") from None


def stop(name: str) -> bool:
    """Stop the lab's keeper, which tears its lab down (SIGTERM, as a drill run would get;
    SIGKILL after STOP_S, leaving what the backend's teardown then removes). False when no
    keeper ran."""
    place = KeeperPlace(name)
    state = place.state()
    running = state is not None and state.alive()
    if state is not None and running:
        _end(state)
    place.forget()
    return running


def _end(state: KeeperState) -> None:
    for sig, within in ((signal.SIGTERM, STOP_S), (signal.SIGKILL, 10.0)):
        try:
            os.kill(state.pid, sig)
        except ProcessLookupError:
            return
        try:
            wait_until(lambda: not state.alive(), timeout=within, interval=0.2,
                       what=f"keeper {state.pid} gone after signal {sig.name}")
            return
        except WaitTimeout:
            continue


class KeeperSession(LabSession):
    """A lab held by its keeper: each operation is a request, answered with typed values."""

    def __init__(self, record: LabRecord, conn: Connection, state: KeeperState,
                 place: KeeperPlace) -> None:
        super().__init__(record, topology_of(record))
        self._conn = conn
        self.state = state
        self.place = place

    @classmethod
    @contextmanager
    def connect(cls, record: LabRecord) -> Iterator[KeeperSession]:
        place = KeeperPlace(record.name)
        state = place.state()
        if record.kept_from is not None and state is None:
            raise LabStateError(
                f"lab {record.name!r} was kept by `stackdrill run --keep`: `stackdrill status "
                f"--lab {record.name}` shows how to reach it and `stackdrill down --lab "
                f"{record.name}` removes it; `stackdrill up` brings up a lab that later "
                "commands can drive")
        if state is None or state.state != "ready" or state.address is None \
                or not state.alive():
            raise InfrastructureError(
                f"lab {record.name!r}: its keeper is not running ({place.log}: "
                f"{_tail(place.log)}); `stackdrill down --lab {record.name}` removes what "
                "is left")
        try:
            conn = Client(state.address, family="AF_UNIX", authkey=place.key())
        except (OSError, AuthenticationError) as exc:
            raise InfrastructureError(f"lab {record.name!r}: cannot reach its keeper at "
                                      f"{state.address}: {exc}") from None
        with conn:
            yield cls(record, conn, state, place)

    def where(self) -> str:
        return (f"held by its keeper (pid {self.state.pid}, up {age(self.state):.0f}s); "
                f"log {self.place.log}")

    def _call(self, method: str, *args: object, within: float = ANSWER_S,
              progress: Progress | None = None) -> Any:
        try:
            self._conn.send(Call(method, args))
        except OSError as exc:
            raise self._gone(method, exc) from None
        deadline = time.monotonic() + within
        while True:
            try:
                if not self._conn.poll(max(0.0, deadline - time.monotonic())):
                    raise InfrastructureError(f"lab {self.record.name!r}: its keeper did not "
                                              f"answer {method} within {within:.0f}s")
                message = self._conn.recv()
            except (EOFError, OSError) as exc:
                raise self._gone(method, exc) from None
            if isinstance(message, Event):
                if progress is not None:
                    progress(message.event)
            elif isinstance(message, Failure):
                raise KeeperRefused(message.message, message.exit_code)
            elif isinstance(message, Value):
                return message.value
            else:
                raise InfrastructureError(f"lab {self.record.name!r}: its keeper answered "
                                          f"{method} with {message!r:.80}")

    def _gone(self, method: str, exc: BaseException) -> InfrastructureError:
        return InfrastructureError(f"lab {self.record.name!r}: its keeper went away during "
                                   f"{method} ({exc!r}); {self.place.log}: "
                                   f"{_tail(self.place.log)}")

    def now(self) -> float:
        return float(self._call("now"))

    def observe(self) -> Observation:
        result: Observation = self._call("observe")
        return result

    def evidence(self) -> Evidence:
        result: Evidence = self._call("evidence")
        return result

    def last_command(self) -> tuple[str, CommandResult] | None:
        result: tuple[str, CommandResult] | None = self._call("last_command")
        return result

    def idle(self, spec: RecoverSpec) -> bool:
        return bool(self._call("idle", spec))

    def dry_run(self, spec: RecoverSpec) -> DryRun:
        result: DryRun = self._call("dry_run", spec)
        return result

    def _carry_out(self, step: Step, progress: Progress | None) -> RecoveryResult | None:
        within = STEP_S + (step.recover.budget_s if step.recover is not None else 0.0)
        result: RecoveryResult | None = self._call("apply", step, within=within,
                                                   progress=progress)
        return result

    def _pass_time(self, seconds: float) -> None:
        """A real lab's time passes by itself: wait here, interruptible, leaving the keeper
        free for other commands."""
        time.sleep(seconds)
