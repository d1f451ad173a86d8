"""What the rule language says when it refuses a rule: problems a marketer can act on."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a rule, at a 1-based line and column.

    `expected` lists, in plain words, what could have come there instead; `hint` says how
    to fix it when we can tell. `end_line`/`end_column` (exclusive) cover the offending
    part when it is known.
    """

    line: int
    column: int
    message: str
    expected: tuple[str, ...] = ()
    hint: str | None = None
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        text = f"line {self.line}, column {self.column}: {self.message}"
        if self.expected:
            text += f"; expected {join_or(self.expected)}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class RuleError(ValueError):
    """A rule refused, with every problem found, in order of position."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        ordered = tuple(sorted(problems, key=lambda p: (p.line, p.column)))
        if not ordered:
            raise ValueError("a RuleError needs at least one problem")
        self.problems: tuple[Problem, ...] = ordered
        count = len(ordered)
        head = "the rule has a problem" if count == 1 else f"the rule has {count} problems"
        super().__init__(f"{head}: " + "; ".join(str(p) for p in ordered))

    def render(self, text: str) -> str:
        """The problems under the lines of `text` they point at, with a caret."""
        lines = text.split("\n")  # as the parser counts lines: only \n ends one
        out = []
        for p in self.problems:
            source = lines[p.line - 1] if 0 < p.line <= len(lines) else ""
            width = 1
            if p.end_line == p.line and p.end_column is not None:
                width = max(1, p.end_column - p.column)
            out.append(str(p))
            out.append(f"  {source}")
            out.append("  " + " " * (p.column - 1) + "^" * width)
        return "\n".join(out)


def join_or(items: Iterable[str]) -> str:
    """`a`, `b` or `c`."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]
