"""A small tokenizer for the brace-and-semicolon configuration files (drbd.conf,
lvm.conf). There is no maintained Python library for either grammar (drbd-utils' own
parser is C, lvm2's too), so this reads words, quoted strings and punctuation with their
line numbers, bounded in size and nesting."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

MAX_TOKENS = 200_000
MAX_DEPTH = 32


class SyntaxProblem(Exception):
    """A token stream that does not follow the grammar; `line` says where."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Token:
    text: str
    line: int
    quoted: bool = False

    def is_punct(self, char: str) -> bool:
        return not self.quoted and self.text == char


def tokenize(text: str, punctuation: str) -> Iterator[Token]:
    """Words, "quoted strings" (backslash escapes) and single punctuation characters;
    `#` starts a comment to the end of the line."""
    i, line, count, end = 0, 1, 0, len(text)
    stop = set(punctuation) | {'"', "#"}
    while i < end:
        char = text[i]
        if char == "\n":
            line += 1
            i += 1
            continue
        if char.isspace():
            i += 1
            continue
        count += 1
        if count > MAX_TOKENS:
            raise SyntaxProblem(line, f"more than {MAX_TOKENS} tokens: refused")
        if char == "#":
            newline = text.find("\n", i)
            i = end if newline < 0 else newline
        elif char == '"':
            token, i, lines = _quoted(text, i, line)
            yield token
            line += lines
        elif char in punctuation:
            yield Token(char, line)
            i += 1
        else:
            start = i
            while i < end and not text[i].isspace() and text[i] not in stop:
                i += 1
            yield Token(text[start:i], line)


def _quoted(text: str, start: int, line: int) -> tuple[Token, int, int]:
    """The string starting at the quote at `start`, the index after it, its newlines."""
    out: list[str] = []
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            value = "".join(out)
            return Token(value, line, quoted=True), i + 1, value.count("\n")
        out.append(char)
        i += 1
    raise SyntaxProblem(line, "unterminated quoted string")
