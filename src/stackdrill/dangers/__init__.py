"""Dangerous settings: what the real software runs and regrets later, each flagged with
the drill that demonstrates it (`stackdrill lint`)."""

from __future__ import annotations

from stackdrill.dangers.find import find_dangers
from stackdrill.dangers.model import Danger, DangerCode, DrillUnavailable

__all__ = ["Danger", "DangerCode", "DrillUnavailable", "find_dangers"]
