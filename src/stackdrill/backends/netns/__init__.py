"""The netns backend: hosts as network namespaces, a real VXLAN overlay, real faults.

Only the declaration is imported here; the lab (pyroute2, subprocesses) loads on `create`.
"""

from __future__ import annotations

from stackdrill.backends.netns.backend import NetnsBackend

__all__ = ["NetnsBackend"]
