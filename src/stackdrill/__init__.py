"""stackdrill: rehearse cloud disasters in a lab before they happen in production.

Data flows one way: topology -> backends -> faults -> recovery -> checks -> report.
"""

from __future__ import annotations

__version__ = "0.1.0"
