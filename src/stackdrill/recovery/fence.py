"""Fencing: a failed host must be confirmed off before anything of its runs elsewhere.

Nova's evacuate requires the source compute service to be down (and, since
Queens, `forced_down` lets an external monitor say so at once); Masakari and
Pacemaker fence first. A power-off request whose completion the controller
confirms, followed by a state read that says OFF, is the only proof accepted.
Anything else (the request fails, times out, the state reads ON or UNKNOWN)
leaves the host unfenced and its instances blocked, with the reason.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

from stackdrill.api import PowerDriver, PowerState
from stackdrill.recovery.taskbase import STEP_ERRORS, TaskGen

if TYPE_CHECKING:
    from stackdrill.recovery.shared import Emitter


log = logging.getLogger(__name__)


@dataclass
class FenceAttempt:
    host: str
    started: float
    future: Future[None]


@dataclass(frozen=True)
class FenceOutcome:
    host: str
    confirmed: bool
    reason: str


def power_on(power: PowerDriver, emit: Emitter, host: str, after: str) -> TaskGen:
    """Power a host on through its controller (after a maintenance reboot's power-off, or
    after fencing with fence action reboot); a failure is an event, never an exception."""
    try:
        yield power.power_on(host)
    except STEP_ERRORS as exc:
        emit("reboot-failed", f"{host}: power-on after {after} failed: {exc}", host)


def begin(power: PowerDriver, host: str, now: float) -> FenceAttempt:
    log.warning("fencing %s: powering it off", host)
    return FenceAttempt(host, now, power.power_off(host))


def conclude(power: PowerDriver, attempt: FenceAttempt, now: float,
             timeout_s: float) -> FenceOutcome | None:
    """None while still waiting; else whether the host is confirmed off, and why not."""
    if not attempt.future.done():
        if now - attempt.started < timeout_s:
            return None
        state = power.state(attempt.host)
        if state is PowerState.OFF:  # the controller's answer was lost, but it is off
            return FenceOutcome(attempt.host, True, "power controller reports off")
        return FenceOutcome(attempt.host, False,
                            f"power-off of {attempt.host} not confirmed within {timeout_s:.0f} s "
                            f"(power controller reports {state.value})")
    error = attempt.future.exception()
    state = power.state(attempt.host)
    if error is None and state is PowerState.OFF:
        return FenceOutcome(attempt.host, True, "power controller reports off")
    why = f"power-off failed: {error}" if error is not None else "power-off returned"
    return FenceOutcome(attempt.host, False,
                        f"{attempt.host} cannot be fenced: {why}; power controller reports "
                        f"{state.value}. Refusing to start its instances elsewhere "
                        "(use --assume-fenced only if you have cut its power yourself)")
