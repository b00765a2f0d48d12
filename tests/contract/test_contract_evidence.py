"""What a lab shows the checks: observations, operator command results, the workloads'
history and the records on their volumes, all as the api's typed values."""

from __future__ import annotations

import pytest
from contract_support import HOSTS, INSTANCES, Nature, settle, wait_for

from stackdrill.api import (
    CommandFinished,
    CommandIssued,
    CommandResult,
    DrbdNodeStatus,
    Lab,
    LvmView,
    OverlayProbe,
    PowerState,
    QuorumStatus,
    StoredRecord,
    WriteOp,
)
from stackdrill.api.commands import ProbeCommand
from stackdrill.errors import StackdrillError


def test_observe_shows_every_hosts_power_typed_maps_and_where_instances_run(
        lab: Lab, nature: Nature) -> None:
    observed = lab.observe()
    assert 0.0 <= observed.time <= lab.clock.now()
    assert dict(observed.power) == dict.fromkeys(HOSTS, PowerState.ON)
    assert all(isinstance(state, PowerState) for state in observed.power.values())
    # typed maps, keyed by the topology's resources and clusters (it has neither here)
    assert set(observed.drbd) <= {r.name for r in lab.topology.drbd}
    assert all(isinstance(s, DrbdNodeStatus) for m in observed.drbd.values() for s in m.values())
    assert set(observed.quorum) <= {c.name for c in lab.topology.clusters}
    assert all(isinstance(q, QuorumStatus) for m in observed.quorum.values() for q in m.values())
    assert all(isinstance(view, LvmView) for view in observed.lvm)
    running = {name: hosts for name, hosts in observed.running.items() if hosts}
    if nature.guests is None:
        assert running == {name: [host] for name, (host, _vol) in INSTANCES.items()}
    else:
        assert running == {}, nature.guests
    settle(lab, lab.drivers.power.power_off("cmp2"))
    after = lab.observe()
    assert after.power["cmp2"] is PowerState.OFF and after.time >= observed.time
    assert not after.running.get("web2")


def test_an_operator_command_leaves_a_typed_result_under_its_label(
        lab: Lab, nature: Nature) -> None:
    label = "contract-probe"
    lab.execute(ProbeCommand(src="web1", dst="web2", label=label), label)
    wait_for(lab, lambda: label in lab.command_results(), "the probe's result")
    result = lab.command_results()[label]
    assert isinstance(result, CommandResult)
    assert 0.0 <= result.started <= result.finished <= lab.clock.now()
    events = [t.event for t in lab.events()]
    assert CommandIssued(label) in events and CommandFinished(label, result.ok) in events
    assert events.index(CommandIssued(label)) < events.index(CommandFinished(label, result.ok))
    if nature.guests is not None:
        assert not result.ok and result.probe is None and "web1" in result.detail
        pytest.skip(f"{nature.guests} (so no instance has a port to probe from)")
    assert result.ok, result.detail
    assert isinstance(result.probe, OverlayProbe)
    assert (result.probe.src, result.probe.dst, result.probe.reachable) == ("web1", "web2", True)


def test_every_acknowledged_write_is_in_the_history_and_on_the_volume(
        lab: Lab, nature: Nature) -> None:
    if nature.guests is not None:
        assert lab.history() == []
        with pytest.raises(StackdrillError, match="guest agent"):
            lab.stored_records("vol1")
        lab.quiesce()  # nothing to freeze, and no guest to ask
        pytest.skip(nature.guests)
    wait_for(lab, lambda: sum(op.outcome == "ok" and op.volume == "vol1"
                              for op in lab.history()) >= 3, "three acknowledged writes")
    lab.quiesce()
    history = lab.history()
    assert all(isinstance(op, WriteOp) for op in history)
    writers = {(op.instance, op.volume, op.host) for op in history}
    assert ("web1", "vol1", "cmp1") in writers
    assert writers <= {(name, volume, host) for name, (host, volume) in INSTANCES.items()}
    stored = lab.stored_records("vol1")
    assert all(isinstance(record, StoredRecord) for record in stored.values())
    acked = [op for op in history if op.volume == "vol1" and op.outcome == "ok"]
    assert all(stored[op.seq].checksum == op.checksum for op in acked)
    predicted = lab.predicted_lost_writes()
    assert predicted is None or predicted == 0  # nothing failed: nothing may be lost
