"""lvm.conf (`section { key = value }`, values numbers, "strings" or [ lists ]) and the
JSON reports of `vgs`/`lvs`/`lsblk`, the operator's record of the volume layout.

lvm2 reads lvm.conf with its own C parser (lib/config/config.c); no Python library
reads it, hence `tokens.tokenize` and the few lines below."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from stackdrill.echo import shown
from stackdrill.errors import Problem
from stackdrill.importer.files import ConfigError, parse_json
from stackdrill.importer.result import Source
from stackdrill.importer.tokens import MAX_DEPTH, SyntaxProblem, Token, tokenize


@dataclass(frozen=True)
class LvmSetting:
    key: str  # "global/use_lvmlockd", as lvmconfig names it
    value: str | int | float | tuple[str | int | float, ...]
    source: Source


def parse_lvm_conf(text: str, file: str) -> tuple[LvmSetting, ...]:
    """Every `key = value` with its section path."""
    try:
        tokens = list(tokenize(text, "{}=[],"))
        settings, pos = _section(tokens, 0, file, "", 0)
    except SyntaxProblem as exc:
        raise ConfigError(f"{file}:{exc.line}", [Problem("", exc.message)]) from None
    if pos < len(tokens):
        raise ConfigError(f"{file}:{tokens[pos].line}", [Problem("", "unexpected '}'")])
    return tuple(settings)


def _section(tokens: list[Token], pos: int, file: str, prefix: str, depth: int
             ) -> tuple[list[LvmSetting], int]:
    if depth > MAX_DEPTH:
        raise SyntaxProblem(tokens[pos].line, f"nested deeper than {MAX_DEPTH} levels")
    out: list[LvmSetting] = []
    while pos < len(tokens) and not tokens[pos].is_punct("}"):
        name = tokens[pos]
        if name.quoted or (len(name.text) == 1 and name.text in "{}=[],"):
            raise SyntaxProblem(name.line, f"expected a name, got {shown(name.text)}")
        nxt = tokens[pos + 1] if pos + 1 < len(tokens) else None
        if nxt is not None and nxt.is_punct("{"):
            inner, pos = _section(tokens, pos + 2, file, f"{prefix}{name.text}/", depth + 1)
            if pos >= len(tokens):
                raise SyntaxProblem(name.line, f"section {shown(name.text)} is never closed")
            out += inner
            pos += 1
        elif nxt is not None and nxt.is_punct("="):
            value, pos = _value(tokens, pos + 2, name.line)
            out.append(LvmSetting(f"{prefix}{name.text}", value, Source(file, name.line)))
        else:
            raise SyntaxProblem(name.line, f"expected '=' or '{{' after {shown(name.text)}")
    return out, pos


def _value(tokens: list[Token], pos: int, line: int
           ) -> tuple[str | int | float | tuple[str | int | float, ...], int]:
    if pos >= len(tokens):
        raise SyntaxProblem(line, "a value is missing")
    tok = tokens[pos]
    if tok.is_punct("["):
        items: list[str | int | float] = []
        pos += 1
        while pos < len(tokens) and not tokens[pos].is_punct("]"):
            if tokens[pos].is_punct(","):
                pos += 1
                continue
            items.append(_scalar(tokens[pos]))
            pos += 1
        if pos >= len(tokens):
            raise SyntaxProblem(line, "'[' is never closed")
        return tuple(items), pos + 1
    return _scalar(tok), pos + 1


def _scalar(tok: Token) -> str | int | float:
    if tok.quoted:
        return tok.text
    if tok.text in "{}=[],":
        raise SyntaxProblem(tok.line, f"expected a value, got {tok.text!r}")
    for kind in (int, float):
        try:
            return kind(tok.text)
        except ValueError:
            pass
    raise SyntaxProblem(tok.line, f"not a number or a quoted string: {tok.text[:40]!r}")


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class VgRow(_Loose):
    vg_name: str
    pv_name: str | None = None
    vg_attr: str = ""
    vg_size: float
    vg_extent_size: float | None = None
    vg_lock_type: str | None = None


class LvRow(_Loose):
    lv_name: str
    vg_name: str
    lv_attr: str = ""
    lv_size: float


class BlockDevice(_Loose):
    name: str
    size: int
    type: str
    children: tuple[BlockDevice, ...] = ()

    def walk(self) -> list[BlockDevice]:
        return [self, *(d for child in self.children for d in child.walk())]


class _Report(_Loose):
    vg: tuple[VgRow, ...] = ()
    lv: tuple[LvRow, ...] = ()


class _Reports(_Loose):
    report: tuple[_Report, ...]


class _Lsblk(_Loose):
    blockdevices: tuple[BlockDevice, ...]


def parse_vgs(text: str, file: str) -> tuple[VgRow, ...]:
    """`vgs --reportformat json --units g --nosuffix -o +pv_name,vg_extent_size,vg_lock_type`."""
    reports: _Reports = parse_json(text, file, _Reports)
    return tuple(row for r in reports.report for row in r.vg)


def parse_lvs(text: str, file: str) -> tuple[LvRow, ...]:
    """`lvs --reportformat json --units g --nosuffix`."""
    reports: _Reports = parse_json(text, file, _Reports)
    return tuple(row for r in reports.report for row in r.lv)


def parse_lsblk(text: str, file: str) -> tuple[BlockDevice, ...]:
    """`lsblk --json --bytes -o NAME,SIZE,TYPE`: every device, depth first."""
    lsblk: _Lsblk = parse_json(text, file, _Lsblk)
    return tuple(d for top in lsblk.blockdevices for d in top.walk())
