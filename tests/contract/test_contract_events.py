"""The event stream: typed events stamped in lab time, in order; the trace and its hash
rendered from them alike on every backend."""

from __future__ import annotations

import hashlib

import pytest
from contract_support import INSTANCES, Nature, of_type, settle, wait_for

from stackdrill.api import GuestStarted, GuestStopped, Lab, PowerChanged, PowerState


def test_power_off_and_on_are_traced_with_each_state_and_the_one_before(lab: Lab) -> None:
    mark = len(lab.events())
    settle(lab, lab.drivers.power.power_off("cmp2"))
    settle(lab, lab.drivers.power.power_on("cmp2"))
    changes = [e for e in of_type(lab.events()[mark:], PowerChanged) if e.host == "cmp2"]
    assert [e.state for e in changes] == [PowerState.OFF, PowerState.BOOTING, PowerState.ON]
    assert [e.was for e in changes] == [PowerState.ON, PowerState.OFF, PowerState.BOOTING]
    assert not [e for e in of_type(lab.events()[mark:], PowerChanged) if e.host != "cmp2"]


def test_guests_start_with_the_lab_and_stop_and_resume_with_their_host(
        lab: Lab, nature: Nature) -> None:
    if nature.guests is not None:
        assert not of_type(lab.events(), GuestStarted)
        assert not any(lab.observe().running.values())
        pytest.skip(nature.guests)
    started = of_type(lab.events(), GuestStarted)
    assert {(e.instance, e.host, e.incarnation) for e in started} == {
        (name, host, 1) for name, (host, _volume) in INSTANCES.items()}
    mark = len(lab.events())
    settle(lab, lab.drivers.power.power_off("cmp1"))
    after = lab.events()[mark:]
    off = next(i for i, t in enumerate(after) if isinstance(t.event, PowerChanged)
               and t.event.host == "cmp1" and t.event.state is PowerState.OFF)
    stopped = [(i, t.event) for i, t in enumerate(after) if isinstance(t.event, GuestStopped)]
    assert [(e.host, e.instance, e.incarnation) for _i, e in stopped] == [("cmp1", "web1", 1)]
    assert stopped[0][0] > off  # the guest died with its host, not before
    assert lab.observe().running["web1"] == []
    settle(lab, lab.drivers.power.power_on("cmp1"))
    wait_for(lab, lambda: lab.observe().running["web1"] == ["cmp1"], "web1 resumed on cmp1")
    resumed = [e for e in of_type(lab.events()[mark:], GuestStarted) if e.instance == "web1"]
    assert [(e.host, e.incarnation) for e in resumed] == [("cmp1", 2)]


def test_every_event_is_stamped_in_lab_time_in_order(lab: Lab) -> None:
    lab.clock.sleep(0.3)
    settle(lab, lab.drivers.power.power_off("cmp2"))
    lab.clock.sleep(0.3)
    now = lab.clock.now()
    times = [t.at for t in lab.events()]
    assert times and times[0] >= 0.0
    assert times == sorted(times)
    assert times[-1] <= now
    off = next(t for t in lab.events() if isinstance(t.event, PowerChanged))
    assert 0.3 <= off.at <= now


def test_the_trace_is_the_events_rendered_and_its_hash_theirs(lab: Lab) -> None:
    settle(lab, lab.drivers.power.power_off("cmp2"))
    for _attempt in range(20):  # real labs emit from other threads: read a quiet moment
        events = lab.events()
        lines, sha = lab.trace(), lab.trace_sha256()
        if lab.events() == events:
            break
    else:
        pytest.fail("the lab never stopped emitting long enough to compare")
    assert lines == [t.line() for t in events]
    assert any(" host/cmp2 power " in line and "state=off" in line for line in lines)
    assert sha == hashlib.sha256("".join(f"{line}\n" for line in lines).encode()).hexdigest()
