"""The backends' old import path for the bounded wait is the one helper, not a copy: their
`except WaitTimeout` must catch what `stackdrill.waiting` raises."""

from __future__ import annotations

import stackdrill.waiting
from stackdrill.backends import realtime
from stackdrill.backends.realtime import wait


def test_the_backends_import_the_one_wait_helper() -> None:
    assert wait.WaitTimeout is realtime.WaitTimeout is stackdrill.waiting.WaitTimeout
    assert wait.wait_until is realtime.wait_until is stackdrill.waiting.wait_until
