"""The lab lock in one process (flock locks are per open file, so two `hold`s of one path
exclude each other here as two commands would): a bounded wait with the one-line busy
error, and a waiter whose lock file `down` replaced starts over on the new one."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from stackdrill.cli.lablock import hold
from stackdrill.errors import LabStateError


def test_a_busy_lab_is_a_one_line_error_after_the_wait(tmp_path: Path) -> None:
    lock = tmp_path / "labs" / "t1.lock"
    with hold(lock, "t1"):
        t0 = time.monotonic()
        with pytest.raises(LabStateError) as caught, hold(lock, "t1", wait_s=0.3):
            pass
        waited = time.monotonic() - t0
    assert str(caught.value) == (f"lab 't1' is busy: stackdrill process {os.getpid()} has held "
                                 f"it for over 0.3 s (its lock: {lock}); try again when it is "
                                 "done")
    assert caught.value.exit_code == 2
    assert 0.25 <= waited < 5.0


def test_a_waiter_on_a_replaced_lock_file_takes_the_new_one(tmp_path: Path) -> None:
    lock = tmp_path / "t1.lock"
    held = threading.Event()
    release = threading.Event()

    def waiter() -> None:
        with hold(lock, "t1", wait_s=10):
            held.set()
            release.wait(10)

    with hold(lock, "t1"):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.2)  # the waiter is polling the file about to be unlinked
        lock.unlink()  # what `down` does under the lock
    try:
        assert held.wait(5)
        assert lock.exists()  # the waiter made and holds the file now at the path...
        # ...so a third command finds it busy
        with pytest.raises(LabStateError, match="is busy"), hold(lock, "t1", wait_s=0):
            pass
    finally:
        release.set()
        thread.join(10)
