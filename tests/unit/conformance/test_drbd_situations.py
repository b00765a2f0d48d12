"""The DRBD situations read the guests' answers the way a user reads them, and the
simulator's in the same terms: drbdadm's exit status and "(code) message", events2's
state changes, the kernel log's loss line."""

from __future__ import annotations

from stackdrill.backends.sim.drbd import DrbdError
from stackdrill.conformance.situations import SITUATIONS
from stackdrill.conformance.situations.drbd_admin import _events2_changes, _transitions
from stackdrill.conformance.situations.drbd_common import drbd_message, sim_exit
from stackdrill.conformance.situations.drbd_loss import first_loss


def test_the_code_and_message_are_read_from_drbdadm_output() -> None:
    text = ("0: State change failed: (-12) Device is held open by someone\n"
            "Command 'drbdsetup-84 secondary 0' terminated with exit code 11")
    assert drbd_message(text) == "(-12) Device is held open by someone"
    assert drbd_message("") is None


def test_simulated_refusals_exit_as_drbdsetup_84_does() -> None:
    """drbd-utils user/v84/drbdsetup.c print_config_error: 17 for SS_NO_UP_TO_DATE_DISK,
    11 for other state changes, 10 for "Failure:"."""
    assert sim_exit(None) == 0
    assert sim_exit(DrbdError("r0: State change failed: (-2) Need access to UpToDate data")) \
        == 17
    assert sim_exit(DrbdError("r0: State change failed: (-12) Device is held open by "
                              "someone")) == 11
    assert sim_exit(DrbdError("r0: Failure: (124) Device is attached to a disk")) == 10


def test_events2_changes_become_8_4_state_sequences() -> None:
    log = "\n".join([
        "exists device name:r0 volume:0 minor:0 disk:Diskless",
        "change device name:r0 volume:0 minor:0 disk:Attaching",
        "change device name:r0 volume:0 minor:0 disk:Negotiating",
        "change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 "
        "replication:SyncTarget",
        "change device name:r0 volume:0 minor:0 disk:UpToDate",
        "change peer-device name:r0 peer-node-id:0 conn-name:peer volume:0 "
        "replication:Established",
    ])
    seen = _transitions(_events2_changes(log))
    assert seen["disk_states"].value == "Attaching > Negotiating > UpToDate"
    assert seen["connection_states"].value == "SyncTarget > Connected"


def test_the_first_connection_loss_and_its_reason_are_read_from_the_kernel_log() -> None:
    lines = [
        "[  100.000000] sd-mark-x-2",
        "[  105.100000] drbd r0: drbd_sync_handshake:",  # an earlier line: not the reason
        "[  110.510000] drbd r0: PingAck did not arrive in time.",
        "[  110.520000] drbd r0: peer( Secondary -> Unknown ) conn( Connected -> "
        "NetworkFailure ) pdsk( UpToDate -> DUnknown )",
        "[  111.000000] drbd r0: conn( NetworkFailure -> Unconnected )",
    ]
    at, reason = first_loss(lines)
    assert at == 110.52
    assert reason == "PingAck did not arrive in time"
    assert first_loss(lines[3:]) == (110.52, None)
    assert first_loss(lines[:1]) == (None, None)


def test_every_drbd_situation_is_recorded_on_libvirt_and_simulated() -> None:
    drbd = [s for name, s in SITUATIONS.items() if name.startswith("drbd-")]
    assert len(drbd) == 35  # admin 5, loss 2, data* 6, split 9, variants 5, verify 2, suspend 2,
    # revert 1, checksums 1, refused 2
    for situation in drbd:
        assert situation.backends == ("libvirt",)
        assert set(situation.simulate()) == set(situation.tolerances), situation.name
