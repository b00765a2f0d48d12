"""The bounded wait lives in `stackdrill.waiting` (everything waits, not only backends);
re-exported here so the backends' imports stay as they were."""

from __future__ import annotations

from stackdrill.waiting import WaitTimeout, wait_until

__all__ = ["WaitTimeout", "wait_until"]
