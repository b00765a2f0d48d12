"""LVM's own rules for volume group and logical volume names, checked where a name enters
(a topology's volume groups and volumes, a drill's or the CLI's `lvm` commands) so that
a name LVM would refuse — or one that reaches a shell — never gets as far as a lab.

The rules are lvm2's, read in lib/misc/lvm-string.c (`_validate_name`,
`_lvname_has_reserved_prefix`, `_lvname_has_reserved_component_string`,
`_lvname_has_reserved_string`, `apply_lvname_restrictions`) and lib/misc/lvm-string.h
(`NAME_LEN 128`, counted with the terminating NUL):
- a name is 1..127 characters of [a-zA-Z0-9+_.-] (C `isalnum` in the C locale);
- it does not start with '-' (the VG-LV separator in device-mapper names);
- it is not '.' or '..';
- an LV name does not start with 'pvmove' or 'snapshot' and contains none of the
  component suffixes LVM uses for hidden LVs ('_cdata', '_cmeta', '_corig', '_cpool',
  '_cvol', '_imeta', '_iorig', '_mimage', '_mlog', '_pmspare', '_rimage', '_rmeta',
  '_tdata', '_tmeta', '_vdata', '_vorigin', '_wcorig').
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import AfterValidator

from stackdrill.echo import shown

NAME_LEN = 128  # lvm-string.h; the longest name is NAME_LEN - 1 characters
_CHARSET = re.compile(r"[a-zA-Z0-9+_.-]+")
LV_RESERVED_PREFIXES = ("pvmove", "snapshot")
LV_RESERVED_STRINGS = (
    "_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_imeta", "_iorig", "_mimage", "_mlog",
    "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig")


def name_problem(name: str, what: str = "name") -> str | None:
    """lvm2's `_validate_name`: why LVM would refuse `name` as a VG or LV name."""
    if not name:
        return f"an empty {what} is not an LVM name"
    if name.startswith("-"):
        return f"{what} {shown(name)} starts with '-', which LVM refuses"
    if name in (".", ".."):
        return f"{what} {shown(name)} is not an LVM name"
    if not _CHARSET.fullmatch(name):
        return f"{what} {shown(name)} has characters LVM refuses (allowed: a-z A-Z 0-9 + _ . -)"
    if len(name) >= NAME_LEN:
        return f"{what} is {len(name)} characters long; LVM allows at most {NAME_LEN - 1}"
    return None


def vg_name_problem(name: str) -> str | None:
    return name_problem(name, "volume group name")


def lv_name_problem(name: str) -> str | None:
    """`_validate_name` plus `apply_lvname_restrictions`: names LVM keeps for itself."""
    problem = name_problem(name, "logical volume name")
    if problem:
        return problem
    for prefix in LV_RESERVED_PREFIXES:
        if name.startswith(prefix):
            return f"logical volume names starting {prefix!r} are reserved by LVM"
    for reserved in LV_RESERVED_STRINGS:
        if reserved in name:
            return f"logical volume names containing {reserved!r} are reserved by LVM"
    return None


def lvm_rule(problem_of: Callable[[str], str | None]) -> AfterValidator:
    """A pydantic validator refusing what `problem_of` finds wrong."""

    def check(value: str) -> str:
        problem = problem_of(value)
        if problem:
            raise ValueError(problem)
        return value

    return AfterValidator(check)


VgName = Annotated[str, lvm_rule(vg_name_problem)]
LvName = Annotated[str, lvm_rule(lv_name_problem)]
