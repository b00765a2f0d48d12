"""The split-brain situations' reading of what the guests' kernels printed and hold."""

from __future__ import annotations

from stackdrill.conformance.situations.drbd_split import (
    PLANS,
    resync_seen,
    split_brain_line,
    whose,
)

A_LOG = """[  301.1] block drbd0: uuid_compare()=100 by rule 90
[  301.2] block drbd0: Split-Brain detected, 0 primaries, automatically solved. Sync from peer node
[  301.3] block drbd0: Began resync as SyncTarget (will sync 8 KB [2 bits set]).
"""
B_LOG = ("[  301.2] block drbd0: Split-Brain detected, 0 primaries, automatically solved. "
         "Sync from this node\n"
         "[  301.3] block drbd0: Began resync as SyncSource (will sync 8 KB [2 bits set]).\n")


def test_split_brain_line_is_the_kernels_words_from_split_brain_on() -> None:
    assert split_brain_line(A_LOG) == ("Split-Brain detected, 0 primaries, automatically "
                                       "solved. Sync from peer node")
    assert split_brain_line("[ 1.0] block drbd0: uuid_compare()=0 by rule 40\n") is None


def test_resync_seen_names_the_host_that_began_as_sync_target() -> None:
    assert resync_seen({"a": A_LOG, "b": B_LOG}) == ("a", 2)
    assert resync_seen({"a": "", "b": B_LOG}) == (None, None)


def test_whose_names_the_marker_a_block_holds() -> None:
    assert whose("sd-marker-b") == "b"
    assert whose("sd-marker-base") == "base"
    assert whose("\x00garbage") == "other"
    assert whose(None) == "other"


def test_every_split_is_observed_through_the_same_fields_on_both_sides() -> None:
    """The manual situations add the resolution's kernel lines; every one ends with who
    synced and whose marker each disk holds."""
    for plan in PLANS:
        names = plan.field_names()
        assert ("manual_split_brain_a" in names) == plan.manual
        assert {"sync_target", "resync_bits", "data_a", "data_b"} <= set(names)
