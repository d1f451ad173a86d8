"""The engine's named errors: each says what went wrong and where."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class EngineError(Exception):
    """Base of the errors a use case raises for its caller to report."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(EngineError):
    """A segment or contact that does not exist."""


class Conflict(EngineError):
    """The request contradicts the current state (a name taken, a segment still in use);
    `field` names the part of the input that does, if one does."""

    def __init__(self, message: str, field: str | None = None, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class VersionMismatch(EngineError):
    """An If-Match version that is not the current one."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"the segment is at version {actual}, not {expected}", expected=expected, actual=actual
        )
        self.expected = expected
        self.actual = actual


class InvalidRule(EngineError):
    """A rule that does not parse or does not make sense; `problems` says where."""

    def __init__(self, problems: Sequence[Any]) -> None:
        count = len(problems)
        super().__init__(f"the rule has {count} problem{'s' if count != 1 else ''}")
        self.problems = list(problems)


class InvalidInput(EngineError):
    """Input that the engine refuses (a bad name, a rule where none belongs)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.field = field


class InvalidEvents(EngineError):
    """Events of a batch that the engine refuses: (index, field, why) for each."""

    def __init__(self, items: Sequence[tuple[int, str, str]]) -> None:
        count = len(items)
        super().__init__(f"{count} event{'s' if count != 1 else ''} of the batch cannot be stored")
        self.items = list(items)


class NotYetApplied(EngineError):
    """A write that was stored in the log, but whose effect on membership could not be worked
    out yet: another writer held the database (`busy`), or applying it failed. A later
    catch-up applies it; `stored` is what the append answered (the receipts of events)."""

    def __init__(self, message: str, stored: Any = None, busy: bool = True) -> None:
        super().__init__(message)
        self.stored = stored
        self.busy = busy
