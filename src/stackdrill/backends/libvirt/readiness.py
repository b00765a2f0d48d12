"""When a guest counts as not ready: a deadline that follows its progress, not the clock.

Under TCG on a busy runner a guest boots in 30 s or in 3 minutes; a fixed wall time either
fails slow machines or waits forever on a dead guest. A guest that keeps printing to its
serial console is still booting, so its deadline moves with every new byte there; one that
is silent for `quiet_s` (no console output, no agent answer) is stuck, and nothing waits
past `hard_s`. Giving up is `LabNotReadyError` (exit 3): the lab was never ready, which says
nothing about the recovery under test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from stackdrill.errors import InfrastructureError, LabNotReadyError

BOOT_QUIET_S = 90.0  # a booting guest silent (console and agent) this long is stuck
BOOT_HARD_S = 900.0  # no boot is waited for longer, however chatty its console
AGENT_RECONNECT_S = 30.0  # a running guest's agent may reconnect (restart, starved) this long


def console_size(path: Path) -> int:
    """Bytes the guest wrote to its serial console so far (0 before the file exists)."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass
class ProgressDeadline:
    """Expires `quiet_s` after the last progress seen (a change in `progress()`), or at
    `hard_s` after it was made, whichever comes first."""

    what: str
    progress: Callable[[], object]
    quiet_s: float = BOOT_QUIET_S
    hard_s: float = BOOT_HARD_S
    now: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    _last_seen: object = field(init=False)
    _last_change: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self._last_change = self.now()
        self._last_seen = self.progress()

    def check(self) -> None:
        """Raise LabNotReadyError when the deadline has passed; otherwise note progress."""
        now = self.now()
        seen = self.progress()
        if seen != self._last_seen:
            self._last_seen, self._last_change = seen, now
        waited = now - self.started
        if waited >= self.hard_s:
            raise LabNotReadyError(f"{self.what}: not within the hard limit of "
                                   f"{self.hard_s:.0f} s, although it was still progressing")
        quiet = now - self._last_change
        if quiet >= self.quiet_s:
            raise LabNotReadyError(f"{self.what}: no progress for {quiet:.0f} s (after "
                                   f"{waited:.0f} s; the console stopped growing)")

    def elapsed(self) -> float:
        return self.now() - self.started


class MachineTooSlowError(InfrastructureError):
    """The runner is too slow for the drills' own timing assumptions (measured at bring-up
    and throughout the drill): whatever verdict followed, a PASS as much as a FAIL, would be
    about the machine, so there is none."""

    def __init__(self, message: str) -> None:
        super().__init__(f"machine too slow: {message}")


def agent_budget(calls_per_cycle: int, interval_s: float, beat_timeout_s: float) -> float:
    """The slowest guest-agent round trip the drills tolerate: the lab's monitor makes
    `calls_per_cycle` agent calls (a heartbeat per compute host, a DRBD status per replica)
    one after another, and all of them must fit in the heartbeat interval the engine
    assumes, each also within a heartbeat's own timeout."""
    return min(beat_timeout_s, interval_s / max(1, calls_per_cycle))


def check_latency(rtt_s: float, budget_s: float, detail: str) -> None:
    if rtt_s > budget_s:
        raise MachineTooSlowError(f"guest agent round trip {rtt_s:.1f} s > budget "
                                  f"{budget_s:.1f} s ({detail})")


@dataclass(frozen=True)
class EngineTiming:
    """The heartbeat timing the recovery engine assumes (RecoveryConfig's defaults: a beat
    every `interval_s`, a host suspected after `grace_s` without one)."""

    interval_s: float = 10.0
    grace_s: float = 30.0


@dataclass
class HostLatency:
    """One host's monitor round trips during the drill, in constant memory."""

    calls: int = 0
    over: int = 0  # calls over budget
    max_s: float = 0.0
    slow_since: float | None = None  # start of the current run of calls over budget
    longest_s: float = 0.0  # the longest such run, first call's start to last call's end


@dataclass
class LatencyWatch:
    """Whether the lab kept the engine's clock for the whole drill, not only at bring-up.

    Each heartbeat-monitor call to a guest that should answer is recorded. One over
    `budget_s` delays that monitor cycle past the engine's heartbeat interval, which the
    engine absorbs by design: it suspects a host only after `grace_s` (three intervals)
    without a beat. Calls over budget without a break for a whole grace period are what
    matters: for as long as the engine takes to decide a host is dead, the lab ran slower
    than the timing that detection, fence deadlines and the drill's duration are sized
    for, so any verdict (a PASS too) was decided by the machine: `MachineTooSlowError`.
    """

    budget_s: float
    timing: EngineTiming = EngineTiming()
    hosts: dict[str, HostLatency] = field(default_factory=dict)
    problem: MachineTooSlowError | None = None  # the first breach, kept

    def record(self, host: str, began: float, ended: float) -> MachineTooSlowError | None:
        """Note one round trip (monotonic seconds); returns the error when this call is
        the one that breached the rule (once per watch)."""
        seen = self.hosts.setdefault(host, HostLatency())
        rtt = ended - began
        seen.calls += 1
        seen.max_s = max(seen.max_s, rtt)
        if rtt <= self.budget_s:
            seen.slow_since = None
            return None
        seen.over += 1
        if seen.slow_since is None:
            seen.slow_since = began
        seen.longest_s = max(seen.longest_s, ended - seen.slow_since)
        if seen.longest_s < self.timing.grace_s or self.problem is not None:
            return None
        self.problem = MachineTooSlowError(
            f"{host}'s guest agent took over {round(self.budget_s, 2):g} s per call for "
            f"{seen.longest_s:.0f} s during the drill (longest {seen.max_s:.1f} s; "
            f"{seen.over} of {seen.calls} calls over budget), longer than the engine's "
            f"{self.timing.grace_s:g} s grace: the lab could not keep the engine's "
            f"{self.timing.interval_s:g} s heartbeat interval")
        return self.problem

    def summary(self) -> dict[str, str]:
        """Per host, for the trace: calls, calls over budget, slowest, longest slow run."""
        return {host: f"{s.calls}calls/{s.over}over/max{s.max_s:.2f}s/run{s.longest_s:.0f}s"
                for host, s in sorted(self.hosts.items())}


def overtaken(label: str, started: float, lost: dict[str, float]) -> MachineTooSlowError | None:
    """A drill step that failed while a host lost power after it had started (`lost`: lab
    time of each host's latest power loss by a fault of the drill; an engine's fence is
    the recovery under test and is judged): the drill put the step before that fault, and
    on a machine that kept its schedule it would have finished first (the simulator runs
    it in no time). Its failure says how slow the runner was, not how the recovery did."""
    during = {host: t for host, t in lost.items() if t > started}
    if not during:
        return None
    host, when = min(during.items(), key=lambda item: item[1])
    return MachineTooSlowError(
        f"{label!r}, started at {started:.1f} s, was still running when {host} lost power "
        f"to the drill's fault at {when:.1f} s: the drill has it done before that fault")
