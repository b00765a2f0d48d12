"""The lab keeper's process: bring the lab up, serve commands on it, tear it down when
told to stop (SIGTERM, from `stackdrill down`) or when its record is gone.

Run as `python -m stackdrill.cli.keeper NAME` by `stackdrill up`, detached from the
terminal, its output in the keeper's log. One command at a time acts on the lab (a lock),
as the lab store's lock already orders commands; a recovery's events are sent to the
command while it runs.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener

from stackdrill.api import LabOptions
from stackdrill.backends import backend_class, lifetime
from stackdrill.cli import labstore
from stackdrill.cli.keeper.place import KeeperPlace, KeeperState
from stackdrill.cli.keeper.protocol import METHODS, Call, Event, Failure, Value
from stackdrill.cli.labcore import LabCore
from stackdrill.cli.session import topology_of
from stackdrill.drill.model import Step
from stackdrill.errors import InfrastructureError, StackdrillError
from stackdrill.recovery.dburl import inventory_url, run_namespace

log = logging.getLogger(__name__)

RECORD_CHECK_S = 5.0  # how often the keeper looks whether its lab was forgotten


class KeptLab:
    """The lab as the keeper serves it: one operation at a time."""

    def __init__(self, core: LabCore, place: KeeperPlace) -> None:
        self.core = core
        self.place = place
        self._lock = threading.Lock()

    def handle(self, call: Call, send: Callable[[object], None]) -> object:
        with self._lock:
            if call.method == "apply":
                (step,) = call.args
                if not isinstance(step, Step):
                    raise InfrastructureError(f"apply: not a step: {step!r:.80}")
                return self.core.apply(step, progress=lambda event: send(Event(event)))
            return getattr(self.core, call.method)(*call.args)

    def answer(self, call: object, send: Callable[[object], None]) -> object:
        """The reply to one request: its value, or the failure as the command would say it."""
        if not isinstance(call, Call) or call.method not in METHODS:
            return Failure(f"the lab keeper does not know the request {call!r:.80}", 2)
        try:
            return Value(self.handle(call, send))
        except StackdrillError as exc:
            return Failure(str(exc), exc.exit_code)
        except Exception as exc:  # a bug or a backend failure: no verdict, keep serving
            log.exception("%s failed", call.method)
            return Failure(f"the lab keeper failed on {call.method}: {exc!r}; its log: "
                           f"{self.place.log}", InfrastructureError.exit_code)


def _serve_connection(conn: Connection, kept: KeptLab) -> None:
    sending = threading.Lock()
    gone = threading.Event()

    def send(message: object) -> None:
        """Send unless the command went away (Ctrl-C): the step carries on regardless."""
        if gone.is_set():
            return
        try:
            with sending:
                conn.send(message)
        except OSError:
            gone.set()

    with conn:
        while not gone.is_set():
            try:
                call = conn.recv()
            except (EOFError, OSError):
                return
            send(kept.answer(call, send))


def _accept_forever(listener: Listener, kept: KeptLab) -> None:
    while True:
        try:
            conn = listener.accept()
        except AuthenticationError:
            log.warning("refused a connection with the wrong key")
            continue
        except OSError:
            return  # the listener was closed: the keeper is stopping
        threading.Thread(target=_serve_connection, args=(conn, kept), daemon=True).start()


def _bring_up(place: KeeperPlace, said: KeeperState) -> None:
    record = labstore.load(place.name)
    topology = topology_of(record)

    def progress(message: str) -> None:
        print(f"progress: {message}", flush=True)

    lab = backend_class(record.backend)().create(
        topology, lab_name=record.name, seed=record.seed, options=LabOptions(progress=progress))
    target = inventory_url()  # STACKDRILL_INVENTORY_URL, set by `up --inventory` or inherited
    with lab, run_namespace(target, place.workdir, "inventory") as url:
        kept = KeptLab(LabCore(lab, topology, place.workdir, inventory=target,
                               inventory_url=url), place)
        kept.core.player.recall(record.steps)
        listener = Listener(family="AF_UNIX", authkey=place.key())
        try:
            threading.Thread(target=_accept_forever, args=(listener, kept), daemon=True).start()
            place.say(said.model_copy(update={"state": "ready", "address": listener.address}))
            print(f"progress: lab {place.name} is up; serving on {listener.address}", flush=True)
            while labstore.exists(place.name):  # until SIGTERM, or the lab is forgotten
                time.sleep(RECORD_CHECK_S)
            print(f"lab {place.name}: its record is gone; tearing it down", flush=True)
        finally:
            listener.close()


def main(argv: list[str]) -> int:
    """The keeper of lab argv[0] in the lab store $STACKDRILL_HOME (set by `up`)."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lifetime.handle_signals()  # SIGTERM from `down`: unwind, so the lab is torn down
    place = KeeperPlace(argv[0])
    said = KeeperState(state="starting", lab=place.name, backend="?", home=str(place.home),
                       owner=lifetime.owner_token(), started_at=time.time())
    try:
        said = said.model_copy(update={"backend": labstore.load(place.name).backend})
        place.say(said)
        _bring_up(place, said)
    except StackdrillError as exc:
        place.say(said.model_copy(update={"state": "failed", "error": str(exc),
                                          "exit_code": exc.exit_code}))
        print(f"failed: {exc}", flush=True)
        return exc.exit_code
    except Exception as exc:
        log.exception("bring-up failed")
        place.say(said.model_copy(update={"state": "failed", "error": f"{exc!r}",
                                          "exit_code": InfrastructureError.exit_code}))
        return InfrastructureError.exit_code
    return 0
