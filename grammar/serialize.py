"""The AST to JSON and back: a `kind` tag per node, enums by value, spans kept on the way out."""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from enum import Enum
from typing import Any

from grammar import ast as a

NODES = (
    a.Compare,
    a.Between,
    a.InList,
    a.TextMatch,
    a.Known,
    a.DateCompare,
    a.Ago,
    a.EventSelector,
    a.Count,
    a.EventCount,
    a.Aggregate,
    a.Recency,
    a.InSegment,
    a.Not,
    a.And,
    a.Or,
    a.Duration,
    a.DateValue,
)


def _kind(cls: type) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


BY_KIND = {_kind(cls): cls for cls in NODES}


def to_json(node: Any) -> Any:
    """A JSON-able form of an AST node (or a literal inside one)."""
    if isinstance(node, Enum):
        return node.value
    if isinstance(node, tuple):
        return [to_json(item) for item in node]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        out: dict[str, Any] = {"kind": _kind(type(node))}
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if f.name == "span":
                if value is not None:
                    out["span"] = dataclasses.asdict(value)
                continue
            out[f.name] = to_json(value)
        return out
    return node


def from_json(data: Any) -> Any:
    """The AST node a `to_json` form stands for; ValueError when it is not one."""
    if not isinstance(data, dict) or data.get("kind") not in BY_KIND:
        raise ValueError(f"not an AST node: {data!r:.80}")
    cls = BY_KIND[data["kind"]]
    hints = typing.get_type_hints(cls, vars(a))
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name == "span" or f.name not in data:
            continue
        kwargs[f.name] = _value(hints[f.name], data[f.name])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(f"malformed {data['kind']}: {exc}") from exc


def _value(hint: Any, data: Any) -> Any:
    if isinstance(data, dict):
        return from_json(data)
    if isinstance(data, list):
        return tuple(_value(typing.Any, item) for item in data)
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if isinstance(option, type) and issubclass(option, Enum):
            return option(data)
    return data
