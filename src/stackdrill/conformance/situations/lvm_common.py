"""What the LVM and cluster situations share: an lvm command's answer as a user reads it
(exit status and every line it printed but warnings), on the guests and on the simulator.

lvm2 exits 0, or ECMD_FAILED (5) when a command failed (tools/errors.h); it prints each
log_error on its own line, after any WARNING lines (log_warn). The simulator raises
LvmError with the same text.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import simpy

from stackdrill.backends.sim.lvm import LvmError
from stackdrill.conformance.model import Fields, Observed

ECMD_FAILED = 5


def lvm_message(text: str) -> str | None:
    """What a failed lvm command printed, line by line joined with " | ", without its
    warnings (log_warn "WARNING: ...", "Retrying ...": their number depends on timing);
    None when it printed nothing else."""
    lines = [raw.strip() for raw in text.splitlines()]
    kept = [line for line in lines if line and not line.startswith(("WARNING", "Retrying"))]
    return " | ".join(kept) or None


def answer(prefix: str, rc: int, text: str) -> Fields:
    """`<prefix>_exit` and `<prefix>_message` of one lvm command."""
    return {f"{prefix}_exit": Observed(value=rc),
            f"{prefix}_message": Observed(value=lvm_message(text) if rc else None)}


def sim_answer(prefix: str, exc: Exception | None) -> Fields:
    return answer(prefix, ECMD_FAILED if exc is not None else 0, str(exc) if exc else "")


def sim_wait(event: simpy.Event) -> Generator[simpy.Event, Any, Exception | None]:
    """An lvm command of the simulator: its refusal, or None."""
    try:
        yield event
    except LvmError as exc:
        return exc
    return None


def names(*prefixes: str) -> tuple[str, ...]:
    return tuple(f"{p}_{k}" for p in prefixes for k in ("exit", "message"))


TIMEOUT_EXIT = 124  # coreutils timeout(1): the command was still running, killed


def sim_bounded(event: simpy.Event, env: simpy.Environment, limit_s: float
                ) -> Generator[simpy.Event, Any, int]:
    """`timeout LIMIT lvm ...` on the simulator: 124 when the command is still waiting
    after `limit_s`, else its exit status."""
    yield env.any_of([event, env.timeout(limit_s)])
    if not event.triggered:
        return TIMEOUT_EXIT
    return 0 if event.ok else ECMD_FAILED
