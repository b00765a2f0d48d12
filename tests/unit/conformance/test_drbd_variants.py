from __future__ import annotations

from stackdrill.conformance.situations.drbd_variants import first_loss


def test_a_request_timeout_is_read_from_the_device_line_without_its_figures() -> None:
    lines = [
        "[  200.000000] sd-mark-link_cut_writing-2",
        "[  206.210000] block drbd0: Remote failed to finish a request within 6204ms > "
        "ko-count (2) * timeout (30 * 0.1s)",
        "[  206.220000] drbd r0: peer( Secondary -> Unknown ) conn( Connected -> Timeout ) "
        "pdsk( UpToDate -> DUnknown )",
    ]
    assert first_loss(lines) == (206.22, "Remote failed to finish a request within "
                                         "ko-count * timeout")


def test_a_ping_timeout_is_read_from_the_resource_line() -> None:
    lines = [
        "[  100.000000] block drbd0: drbd_sync_handshake:",
        "[  104.010000] drbd r0: PingAck did not arrive in time.",
        "[  104.020000] drbd r0: peer( Secondary -> Unknown ) conn( Connected -> "
        "NetworkFailure ) pdsk( UpToDate -> DUnknown )",
    ]
    assert first_loss(lines) == (104.02, "PingAck did not arrive in time")
    assert first_loss(lines[:1]) == (None, "drbd_sync_handshake:")
