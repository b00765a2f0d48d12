"""DRBD settings the kernel refuses as the resource comes up: the three that
`stackdrill lint` flags and only the simulator realises in a drill (backends/sim/drbd.py
`refused_net_options` and `_bring_up_promotions`), recorded so the danger drills rest on
what DRBD 8.4 does rather than on a reading of its source:

- a second Primary without allow-two-primaries: `drbdadm primary` on the Connected
  Secondary while its peer is Primary (drbd_state.c is_valid_state, SS_TWO_PRIMARIES);
- allow-two-primaries with protocol A: `drbdadm up` attaches the disk, then the kernel
  refuses the net options (drbd_nl.c _check_net_options, ERR_NOT_PROTO_C), so the
  resource stays StandAlone and a Primary is refused while its peer is not known Outdated
  (fencing resource-only);
- fencing resource-and-stonith with protocol A: the same, ERR_STONITH_AND_PROT_A.

On the guests each variant is written to r0's resource file and brought up with `drbdadm
down` / `up` on both; the default file is brought up again afterwards, however the
situation ends. Exit statuses, messages and states are compared exactly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackdrill.backends.sim.drbd import DrbdError
from stackdrill.conformance import labs
from stackdrill.conformance.drbd_lab import (
    PRIMARY,
    RES,
    SECONDARY,
    VG,
    reset_connected,
    run,
    sim_lab,
    topology,
    vm_lab,
)
from stackdrill.conformance.model import EXACT, Fields, Situation
from stackdrill.conformance.situations.drbd_common import (
    FAILURE_EXIT,
    answer,
    sim_exit,
    sim_states,
    state_names,
    vm_states,
)
from stackdrill.conformance.situations.drbd_data_common import write_config

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab

HOSTS = (PRIMARY, SECONDARY)
# case -> r0's settings as the operator wrote them (dangers/find.py's codes)
UP_REFUSED: dict[str, dict[str, Any]] = {
    "two_primaries_protocol_a": {"allow_two_primaries": True, "protocol": "A"},
    "stonith_protocol_a": {"fencing": "resource-and-stonith", "protocol": "A"},
}


def _refusal(prefix: str, why: str | None, exit_if_refused: int | None = None) -> Fields:
    """A simulated command's answer: its refusal message as drbdadm prints it, or none."""
    if why is None:
        return answer(prefix, 0, "")
    rc = exit_if_refused if exit_if_refused is not None else sim_exit(DrbdError(why))
    return answer(prefix, rc, why)


# ---------------------------------------------------------------- second Primary

def _sim_second_primary() -> Fields:
    lab = sim_lab(topology({"primary": [PRIMARY, SECONDARY]}))
    lab.advance(lab.kernel.now + labs.SIM_LIMIT_S)
    res = lab.drbd[RES]
    out = _refusal("second_primary", res.refused_promotions.get(SECONDARY))
    return out | sim_states("second_primary_after", lab, SECONDARY)


def _vm_second_primary() -> Fields:
    lab = vm_lab()
    reset_connected(lab)
    out = answer("second_primary", *run(lab, SECONDARY, f"drbdadm primary {RES}"))
    return out | vm_states("second_primary_after", lab, SECONDARY)


SECOND_PRIMARY = Situation(
    name="drbd-second-primary-without-allow",
    exercises="allow-two-primaries no (the default): `drbdadm primary` on the Connected "
              "Secondary while its peer is Primary, as a second become-primary-on does",
    tolerances=dict.fromkeys(("second_primary_exit", "second_primary_message",
                              *state_names("second_primary_after")), EXACT),
    simulate=_sim_second_primary, recorders={"libvirt": _vm_second_primary})


# ---------------------------------------------------------------- net options refused at up

def _sim_up_refused(case: str) -> Fields:
    lab = sim_lab(topology(UP_REFUSED[case]))
    lab.advance(lab.kernel.now + labs.SIM_LIMIT_S)
    res = lab.drbd[RES]
    out = _refusal(f"{case}_up", res.net_refused, FAILURE_EXIT)
    out |= _refusal(f"{case}_primary", res.refused_promotions.get(PRIMARY))
    return out | sim_states(f"{case}_after", lab, PRIMARY)


def _down_both(lab: LibvirtLab) -> None:
    for host in HOSTS:
        run(lab, host, f"vgchange -an {VG} >/dev/null 2>&1; drbdadm secondary {RES}; "
                       f"drbdadm down {RES}", timeout=60)


def _vm_up_refused(lab: LibvirtLab, case: str) -> Fields:
    _down_both(lab)
    write_config(lab, topology(UP_REFUSED[case]), adjust=False)
    out = answer(f"{case}_up", *run(lab, PRIMARY, f"drbdadm up {RES}"))
    run(lab, SECONDARY, f"drbdadm up {RES}")
    out |= answer(f"{case}_primary", *run(lab, PRIMARY, f"drbdadm primary {RES}"))
    return out | vm_states(f"{case}_after", lab, PRIMARY)


def _sim_up_cases() -> Fields:
    out: Fields = {}
    for case in UP_REFUSED:
        out |= _sim_up_refused(case)
    return out


def _vm_up_cases() -> Fields:
    lab = vm_lab()
    out: Fields = {}
    try:
        for case in UP_REFUSED:
            out |= _vm_up_refused(lab, case)
    finally:
        _down_both(lab)
        write_config(lab, topology(), adjust=False)
        reset_connected(lab)
    return out


def _up_names() -> tuple[str, ...]:
    return tuple(name for case in UP_REFUSED for name in (
        f"{case}_up_exit", f"{case}_up_message", f"{case}_primary_exit",
        f"{case}_primary_message", *state_names(f"{case}_after")))


NET_OPTIONS_REFUSED = Situation(
    name="drbd-net-options-refused-at-up",
    exercises="`drbdadm up` of r0 written with allow-two-primaries and protocol A, then "
              "with fencing resource-and-stonith and protocol A (fencing resource-only "
              "in the first): the answer of `up`, of `drbdadm primary` after it, and the "
              "node's state",
    tolerances=dict.fromkeys(_up_names(), EXACT),
    simulate=_sim_up_cases, recorders={"libvirt": _vm_up_cases},
    not_modelled={f"{case}_up_exit": (
        "drbdadm's own exit status for `up` (1: one of the drbdsetup steps it runs was "
        "refused): the simulator brings a resource up with the lab, it has no `up` "
        "command; the kernel's code and message are compared") for case in UP_REFUSED})

SITUATIONS = (SECOND_PRIMARY, NET_OPTIONS_REFUSED)
