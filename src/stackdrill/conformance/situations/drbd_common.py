"""What the DRBD situations share: drbdadm's answer as a user reads it (exit status and the
"(code) message" DRBD prints), on the guests and on the simulator, and node states as
fields.

drbdadm runs drbdsetup-84, whose exit status says what the kernel answered
(drbd-utils user/v84/drbdsetup.c print_config_error): 10 for "Failure: (code) ...", 11
for "State change failed: (code) ...", except SS_NO_UP_TO_DATE_DISK (-2) 17,
SS_LOWER_THAN_OUTDATED (-16) 5 and SS_NO_LOCAL_DISK (-4) 16; drbdadm passes it on
("Command 'drbdsetup-84 secondary 0' terminated with exit code 11"). The simulator raises
DrbdError with the same "(code) message"; its exit status is the one drbdsetup gives it.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.backends.sim.drbd import DrbdError
from stackdrill.conformance.drbd_lab import RES, proc_drbd
from stackdrill.conformance.model import Fields, Observed

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab

STATE_CHANGE_FAILED_EXIT = 11  # drbdsetup: "State change failed: (code) ..."
FAILURE_EXIT = 10  # drbdsetup: "Failure: (code) ..."
STATE_CHANGE_EXITS = {-2: 17, -16: 5, -4: 16}  # print_config_error's special cases
_CODE = re.compile(r"\((-?\d+)\) ([^\n]*\S)")  # "(code) message", to the line's last word
STATE_KEYS = ("role", "connection", "disk", "peer_disk")


def drbd_message(text: str) -> str | None:
    """The first "(code) message" DRBD printed, or None when it printed none."""
    found = _CODE.search(text)
    return f"({found.group(1)}) {found.group(2)}" if found else None


def answer(prefix: str, rc: int, text: str) -> Fields:
    """`<prefix>_exit` and `<prefix>_message` of one drbdadm command."""
    return {f"{prefix}_exit": Observed(value=rc),
            f"{prefix}_message": Observed(value=drbd_message(text))}


def sim_exit(exc: Exception | None) -> int:
    if exc is None:
        return 0
    if "State change failed" not in str(exc):
        return FAILURE_EXIT
    found = _CODE.search(str(exc))
    code = int(found.group(1)) if found else 0
    return STATE_CHANGE_EXITS.get(code, STATE_CHANGE_FAILED_EXIT)


def sim_answer(prefix: str, exc: Exception | None) -> Fields:
    return answer(prefix, sim_exit(exc), str(exc) if exc is not None else "")


def sim_call(call: Any, *args: Any, **kwargs: Any) -> Exception | None:
    """A synchronous drbdadm command of the simulated resource: its refusal, or None."""
    try:
        call(*args, **kwargs)
    except DrbdError as exc:
        return exc
    return None


def sim_wait(event: simpy.Event) -> Generator[simpy.Event, Any, Exception | None]:
    """A drbdadm command that takes simulated time (a role change): its refusal, or None."""
    try:
        yield event
    except DrbdError as exc:
        return exc
    return None


def states(prefix: str, seen: dict[str, str]) -> Fields:
    """One node's role, connection, disk and peer disk as fields `<prefix>_<key>`."""
    return {f"{prefix}_{key}": Observed(value=seen.get(key)) for key in STATE_KEYS}


def sim_states(prefix: str, lab: SimLab, host: str) -> Fields:
    st = lab.drbd[RES].status()[host]
    return states(prefix, {"role": st.role, "connection": st.connection, "disk": st.disk,
                           "peer_disk": st.peer_disk})


def vm_states(prefix: str, lab: LibvirtLab, host: str) -> Fields:
    return states(prefix, proc_drbd(lab, host))


def state_names(prefix: str) -> tuple[str, ...]:
    return tuple(f"{prefix}_{key}" for key in STATE_KEYS)
