"""An iSCSI session losing its path, on the two-node lab of `drbd_lab`: `a` exports its LV
with LIO on its management address, `b` logs in with open-iscsi (replacement timeout
REPLACEMENT_S) and writes one block with O_DIRECT while the path is cut.

What the simulator's initiator (`backends/sim/instances.py` IscsiSession) must do as
open-iscsi does (libiscsi.c, scsi_transport_iscsi.c): a write waits while the path is
down and completes once it is back within the replacement timeout; when the path stays
down, the initiator first notices the dead connection (its nop-out ping: interval 5 s,
timeout 5 s), then waits out the replacement timeout and fails the write; from then on
the session is failed and a new write fails at once (fast-fail), until the path is back
and iscsid has logged in again, after which writes complete (`healed_write_s`: from the
heal to the first write that succeeds, writing again every 0.5 s after a failed one).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import simpy

from stackdrill.backends.libvirt import iscsi
from stackdrill.backends.sim.disks import BlockIOError
from stackdrill.backends.sim.instances import IscsiSession
from stackdrill.conformance.drbd_lab import (
    LV,
    PRIMARY,
    SECONDARY,
    VG,
    must,
    reset_connected,
    run,
    sim_lab,
    vm_lab,
)
from stackdrill.conformance.model import EXACT, Fields, Observed, Situation, within
from stackdrill.errors import StackdrillError
from stackdrill.faults import Partition
from stackdrill.topology import IscsiInitiator
from stackdrill.waiting import wait_until

if TYPE_CHECKING:
    from stackdrill.backends.libvirt.lab import LibvirtLab
    from stackdrill.backends.sim.lab import SimLab

REPLACEMENT_S = 15  # short enough to wait out in a recording
SHORT_CUT_S = 6.0  # a loss the session rides through
LONG_CUT_S = 60.0  # a loss it does not
NETWORK = "mgmt"
PARTITION = Partition(groups=((PRIMARY,), (SECONDARY,)), network=NETWORK)
WRITE_LIMIT_S = 120.0  # no write of this situation takes longer
HEALED_TRIES, HEALED_RETRY_S = 60, 0.5  # writes after the heal until one succeeds
RESULT = "/run/sd-iscsi-write"


# ---------------------------------------------------------------- simulator

def _sim() -> Fields:
    lab = sim_lab()
    env = lab.kernel.env
    device = lab.lvm_hosts[PRIMARY].lv_device(VG, LV)
    session = IscsiSession(lab.kernel, lab.underlay, NETWORK, SECONDARY, PRIMARY, device,
                           float(REPLACEMENT_S))
    out: Fields = {}

    def write(prefix: str, block: int) -> Generator[simpy.Event, Any, float]:
        began = env.now
        ok = True
        try:
            yield session.write(block, block)
        except BlockIOError:
            ok = False
        out[f"{prefix}_ok"] = Observed(value=ok)
        return env.now - began

    def steps() -> Generator[simpy.Event, Any, None]:
        yield env.timeout(1.0)
        lab.inject(PARTITION)
        cut = env.now
        env.process(_heal_after(lab, env, SHORT_CUT_S))
        yield from write("short_write", 1)
        out["short_write_s"] = _seconds(env.now - cut)
        yield env.timeout(30.0)  # the session back and idle
        lab.inject(PARTITION)
        cut = env.now
        yield from write("long_write", 2)
        out["long_write_failed_after_s"] = _seconds(env.now - cut)
        out["failfast_write_s"] = _seconds((yield from write("failfast_write", 3)))
        yield env.timeout(max(0.0, cut + LONG_CUT_S - env.now))
        lab.heal(PARTITION)
        healed = env.now
        for _ in range(HEALED_TRIES):  # until the session is back (iscsid logs in again)
            yield from write("healed_write", 4)
            if out["healed_write_ok"].value:
                break
            yield env.timeout(HEALED_RETRY_S)
        out["healed_write_s"] = _seconds(env.now - healed)

    proc = env.process(steps())
    lab.advance(lab.kernel.now + 4 * WRITE_LIMIT_S)
    if not proc.processed:
        raise RuntimeError("the simulated iSCSI situation did not end")
    return out


def _heal_after(lab: SimLab, env: simpy.Environment, seconds: float
                ) -> Generator[simpy.Event, Any, None]:
    yield env.timeout(seconds)
    lab.heal(PARTITION)


def _seconds(value: float) -> Observed:
    return Observed(value=round(value, 1), unit="s")


# ---------------------------------------------------------------- real guests

def _vm() -> Fields:
    lab = vm_lab()
    reset_connected(lab, lv_active=True)
    address = lab.topology.network(NETWORK).addresses[PRIMARY]
    must(lab, PRIMARY, iscsi.export_script(VG, LV, address), timeout=120)
    timeouts = IscsiInitiator(replacement_timeout=REPLACEMENT_S)
    disk = must(lab, SECONDARY, iscsi.login_script(SECONDARY, LV, address, timeouts),
                timeout=120).split()[-1]
    try:
        return _vm_writes(lab, disk)
    finally:
        with contextlib.suppress(StackdrillError):  # healed already, unless it failed midway
            lab.heal(PARTITION)
        run(lab, SECONDARY, iscsi.logout_script(LV), timeout=120)
        run(lab, PRIMARY, iscsi.unexport_script(LV), timeout=120)


def _vm_writes(lab: LibvirtLab, disk: str) -> Fields:
    out: Fields = {}
    lab.inject(PARTITION)
    cut = time.monotonic()
    start = _vm_write(lab, disk, 1)
    time.sleep(max(0.0, cut + SHORT_CUT_S - time.monotonic()))
    lab.heal(PARTITION)
    ok, done = _vm_result(lab, start)
    out |= {"short_write_ok": Observed(value=ok), "short_write_s": _seconds(done - cut)}
    time.sleep(30.0)
    lab.inject(PARTITION)
    cut = time.monotonic()
    ok, done = _vm_result(lab, _vm_write(lab, disk, 2))
    out |= {"long_write_ok": Observed(value=ok),
            "long_write_failed_after_s": _seconds(done - cut)}
    began = time.monotonic()
    ok, done = _vm_result(lab, _vm_write(lab, disk, 3))
    out |= {"failfast_write_ok": Observed(value=ok), "failfast_write_s": _seconds(done - began)}
    time.sleep(max(0.0, cut + LONG_CUT_S - time.monotonic()))
    lab.heal(PARTITION)
    healed = time.monotonic()
    for _ in range(HEALED_TRIES):  # until the session is back (iscsid logs in again)
        ok, done = _vm_result(lab, _vm_write(lab, disk, 4))
        if ok:
            break
        time.sleep(HEALED_RETRY_S)
    return out | {"healed_write_ok": Observed(value=ok),
                  "healed_write_s": _seconds(done - healed)}


def _vm_write(lab: LibvirtLab, disk: str, block: int) -> Callable[[], str]:
    """Start one O_DIRECT write of `block` in the background on `b`; a reader of its
    result ("rc") once it ended, "" before."""
    must(lab, SECONDARY, f"rm -f {RESULT}; nohup sh -c 'dd if=/dev/urandom of={disk} bs=4k "
                         f"count=1 seek={block} oflag=direct,dsync status=none; "
                         f"echo $? > {RESULT}.tmp && mv {RESULT}.tmp {RESULT}' "
                         ">/dev/null 2>&1 &")
    return lambda: run(lab, SECONDARY, f"cat {RESULT} 2>/dev/null", timeout=10)[1]


def _vm_result(lab: LibvirtLab, read: Callable[[], str]) -> tuple[bool, float]:
    """Whether the write succeeded, and when its end was first seen (polled each 0.2 s)."""
    said = wait_until(lambda: read().strip(), timeout=WRITE_LIMIT_S, interval=0.2,
                      what=f"the end of an iSCSI write on {SECONDARY}")
    return said == "0", time.monotonic()


SESSION_LOSS = Situation(
    name="iscsi-session-loss",
    exercises=f"a LIO export on a, open-iscsi on b (replacement_timeout {REPLACEMENT_S}); "
              f"a {SHORT_CUT_S:g} s cut under a direct write, then a {LONG_CUT_S:g} s cut: "
              "the write in flight, a second write, and writes after the heal until one "
              "succeeds",
    # the guests' times include about 1 s of agent round trips (starting dd, seeing it end)
    tolerances={"short_write_ok": EXACT, "short_write_s": within(2.5),
                "long_write_ok": EXACT, "long_write_failed_after_s": within(3.0),
                "failfast_write_ok": EXACT, "failfast_write_s": within(2.0),
                "healed_write_ok": EXACT, "healed_write_s": within(2.0)},
    simulate=_sim, recorders={"libvirt": _vm})

SITUATIONS = (SESSION_LOSS,)
