"""Echoing what a user wrote back in an error message, bounded.

An input file may be hostile or simply not what it claims to be (a drill's `topology:`
naming a password file): whatever of it is shown in a message is escaped, cut to a few
dozen characters and, for lists of keys, to the first few. `repr()` of input is never
called unbounded — an alias bomb's repr alone is gigabytes.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Sequence

MAX_ECHO = 40  # characters of one echoed value or key
MAX_KEYS = 5  # unknown keys named one by one; the rest are counted
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def _bounded_repr() -> reprlib.Repr:
    r = reprlib.Repr()
    r.maxlevel = 2
    r.maxstring = MAX_ECHO
    r.maxother = MAX_ECHO
    r.maxlong = MAX_ECHO
    r.maxlist = r.maxtuple = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = 4
    return r


_REPR = _bounded_repr()


def cut(text: str, limit: int = MAX_ECHO) -> str:
    """`text` no longer than `limit` characters, marked with … when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(value: object, limit: int = MAX_ECHO) -> str:
    """A bounded, escaped repr of `value`: 'cmp9', 'x\\n…', [[[...]]]."""
    return cut(_REPR.repr(value), limit)


def key_text(key: object) -> str:
    """A mapping key as part of an error path: plain names as they are, anything else
    (spaces, newlines, escapes, very long) as a bounded repr."""
    if isinstance(key, str) and len(key) <= MAX_ECHO and _PLAIN_KEY.fullmatch(key):
        return key
    return shown(key)


def counted(items: Sequence[str], what: str, limit: int = MAX_KEYS) -> str:
    """'a, b, c' or 'a, b, c, d, e and 7 more <what>'."""
    head = ", ".join(items[:limit])
    rest = len(items) - limit
    return f"{head} and {rest} more {what}" if rest > 0 else head
