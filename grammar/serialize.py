"""AST to JSON and back: every node an object with a `"kind"`, enums by value.

Dates travel as `{"kind": "date", "value": "2026-01-01T00:00:00.000Z"}` so that they
never pass for text; spans travel as `"span"` and are ignored on the way back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

from grammar import ast as a
from grammar import vocabulary
from grammar.literals import LiteralError, iso_instant, parse_date

E = TypeVar("E", bound=Enum)

# ---- to JSON ----


def to_json(node: a.Condition) -> dict[str, Any]:
    """A JSON-able dict for a rule's AST, spans included where known."""
    return _node(node)


def _with_span(data: dict[str, Any], node: Any) -> dict[str, Any]:
    span = getattr(node, "span", None)
    if span is not None:
        data["span"] = {
            "line": span.line,
            "column": span.column,
            "end_line": span.end_line,
            "end_column": span.end_column,
        }
    return data


def _node(node: a.Condition) -> dict[str, Any]:
    data: dict[str, Any]
    if isinstance(node, a.Compare):
        data = {
            "kind": "compare",
            "prop": node.prop,
            "op": node.op.value,
            "value": _value(node.value),
        }
    elif isinstance(node, a.Between):
        data = {
            "kind": "between",
            "prop": node.prop,
            "low": _value(node.low),
            "high": _value(node.high),
        }
    elif isinstance(node, a.InList):
        data = {
            "kind": "in_list",
            "prop": node.prop,
            "values": [_value(v) for v in node.values],
            "negated": node.negated,
        }
    elif isinstance(node, a.TextMatch):
        data = {"kind": "text_match", "prop": node.prop, "op": node.op.value, "value": node.value}
    elif isinstance(node, a.Known):
        data = {"kind": "known", "prop": node.prop, "known": node.known}
    elif isinstance(node, a.DateCompare):
        data = {
            "kind": "date_compare",
            "prop": node.prop,
            "op": node.op.value,
            "value": _value(node.value),
        }
    elif isinstance(node, a.Ago):
        data = {
            "kind": "ago",
            "prop": node.prop,
            "op": node.op.value,
            "duration": _duration(node.duration),
        }
    elif isinstance(node, a.EventCount):
        data = {
            "kind": "event_count",
            "event": _selector(node.event),
            "count": _with_span(
                {"kind": "count", "op": node.count.op.value, "n": node.count.n}, node.count
            ),
            "window": _duration(node.window) if node.window else None,
        }
    elif isinstance(node, a.Aggregate):
        data = {
            "kind": "aggregate",
            "func": node.func.value,
            "prop": node.prop,
            "event": _selector(node.event),
            "window": _duration(node.window) if node.window else None,
            "op": node.op.value,
            "value": _value(node.value),
        }
    elif isinstance(node, a.Recency):
        data = {
            "kind": "recency",
            "which": node.which.value,
            "event": _selector(node.event),
            "op": node.op.value,
            "duration": _duration(node.duration),
        }
    elif isinstance(node, a.InSegment):
        data = {"kind": "in_segment", "segment": node.segment}
    elif isinstance(node, a.Not):
        data = {"kind": "not", "item": _node(node.item)}
    elif isinstance(node, a.And | a.Or):
        data = {
            "kind": "and" if isinstance(node, a.And) else "or",
            "items": [_node(item) for item in node.items],
        }
    else:
        raise TypeError(f"not a condition: {node!r}")
    return _with_span(data, node)


def _selector(selector: a.EventSelector) -> dict[str, Any]:
    data = {
        "kind": "event",
        "type": selector.type,
        "filter": _node(selector.filter) if selector.filter is not None else None,
    }
    return _with_span(data, selector)


def _duration(duration: a.Duration) -> dict[str, Any]:
    data = {"kind": "duration", "amount": duration.amount, "unit": duration.unit.value}
    return _with_span(data, duration)


def _value(value: a.Value) -> Any:
    if isinstance(value, a.DateValue):
        return _with_span({"kind": "date", "value": iso_instant(value.ms)}, value)
    return value


# ---- from JSON ----


def from_json(data: Any) -> a.Condition:
    """The AST a `to_json` dict stands for; ValueError when it is not one."""
    return _read_node(data, "$")


def _fields(data: Any, where: str, kind: str, *names: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    extra = set(data) - {"kind", "span", *names}
    if extra:
        raise ValueError(f"{where}: unexpected field(s) {', '.join(sorted(extra))} in {kind}")
    missing = [n for n in names if n not in data]
    if missing:
        raise ValueError(f"{where}: {kind} needs {', '.join(missing)}")
    return data


def _text(data: Mapping[str, Any], name: str, where: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise ValueError(f"{where}.{name}: expected text, got {value!r}")
    return value


def _prop(data: Mapping[str, Any], where: str) -> str:
    name = _text(data, "prop", where)
    problem = vocabulary.rule_property_problem(name)
    if problem is not None:
        raise ValueError(f"{where}.prop: {problem}")
    return name


def _int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}: expected a whole number, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")
    return value


def _enum(kind: type[E], value: Any, where: str) -> E:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in kind)
        raise ValueError(f"{where}: expected one of {choices}, got {value!r}") from None


def _read_value(value: Any, where: str) -> a.Value:
    if isinstance(value, Mapping):
        _fields(value, where, "date", "value")
        if value.get("kind") != "date":
            raise ValueError(f"{where}: a value object must be of kind date")
        try:
            return a.DateValue(parse_date(_text(value, "value", where)))
        except LiteralError as exc:
            raise ValueError(f"{where}.value: {exc}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where}: numbers must be finite")
    if isinstance(value, str | bool | int | float):
        return value
    raise ValueError(f"{where}: expected a text, number, boolean or date, got {value!r}")


def _read_number_or_date(value: Any, where: str) -> int | float | a.DateValue:
    read = _read_value(value, where)
    if isinstance(read, str | bool):
        raise ValueError(f"{where}: expected a number or a date, got {value!r}")
    return read


def _read_duration(data: Any, where: str) -> a.Duration:
    fields = _fields(data, where, "duration", "amount", "unit")
    _kind(fields, "duration", where)
    return a.Duration(
        _int(fields["amount"], f"{where}.amount"), _enum(a.Unit, fields["unit"], f"{where}.unit")
    )


def _read_optional_duration(data: Any, where: str) -> a.Duration | None:
    return None if data is None else _read_duration(data, where)


def _read_selector(data: Any, where: str) -> a.EventSelector:
    fields = _fields(data, where, "event", "type", "filter")
    _kind(fields, "event", where)
    event_type = fields["type"]
    if event_type is not None and not isinstance(event_type, str):
        raise ValueError(f"{where}.type: expected text or null, got {event_type!r}")
    flt = fields["filter"]
    return a.EventSelector(event_type, None if flt is None else _read_node(flt, f"{where}.filter"))


def _read_count(data: Any, where: str) -> a.Count:
    fields = _fields(data, where, "count", "op", "n")
    _kind(fields, "count", where)
    return a.Count(_enum(a.CountOp, fields["op"], f"{where}.op"), _int(fields["n"], f"{where}.n"))


def _kind(data: Mapping[str, Any], kind: str, where: str) -> None:
    if data.get("kind") != kind:
        raise ValueError(f"{where}: expected kind {kind!r}, got {data.get('kind')!r}")


def _read_node(data: Any, where: str) -> a.Condition:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    kind = data.get("kind")
    reader = _READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise ValueError(f"{where}: unknown kind {kind!r}")
    return reader(data, where)


def _compare(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "compare", "prop", "op", "value")
    op = _enum(a.CompareOp, f["op"], f"{w}.op")
    return a.Compare(_prop(f, w), op, _read_value(f["value"], f"{w}.value"))


def _between(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "between", "prop", "low", "high")
    return a.Between(
        _prop(f, w),
        _read_number_or_date(f["low"], f"{w}.low"),
        _read_number_or_date(f["high"], f"{w}.high"),
    )


def _in_list(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "in_list", "prop", "values", "negated")
    values = f["values"]
    if not isinstance(values, list) or not values:
        raise ValueError(f"{w}.values: expected a non-empty list")
    return a.InList(
        _prop(f, w),
        tuple(_read_value(v, f"{w}.values[{i}]") for i, v in enumerate(values)),
        _bool(f["negated"], f"{w}.negated"),
    )


def _text_match(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "text_match", "prop", "op", "value")
    op = _enum(a.TextOp, f["op"], f"{w}.op")
    return a.TextMatch(_prop(f, w), op, _text(f, "value", w))


def _known(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "known", "prop", "known")
    return a.Known(_prop(f, w), _bool(f["known"], f"{w}.known"))


def _date_compare(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "date_compare", "prop", "op", "value")
    value = _read_value(f["value"], f"{w}.value")
    if not isinstance(value, a.DateValue):
        raise ValueError(f"{w}.value: expected a date")
    return a.DateCompare(_prop(f, w), _enum(a.DateOp, f["op"], f"{w}.op"), value)


def _ago(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "ago", "prop", "op", "duration")
    return a.Ago(
        _prop(f, w),
        _enum(a.AgoOp, f["op"], f"{w}.op"),
        _read_duration(f["duration"], f"{w}.duration"),
    )


def _event_count(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "event_count", "event", "count", "window")
    return a.EventCount(
        _read_selector(f["event"], f"{w}.event"),
        _read_count(f["count"], f"{w}.count"),
        _read_optional_duration(f["window"], f"{w}.window"),
    )


def _aggregate(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "aggregate", "func", "prop", "event", "window", "op", "value")
    value = _read_value(f["value"], f"{w}.value")
    if isinstance(value, str | bool | a.DateValue):
        raise ValueError(f"{w}.value: expected a number")
    return a.Aggregate(
        _enum(a.AggregateFunc, f["func"], f"{w}.func"),
        _prop(f, w),
        _read_selector(f["event"], f"{w}.event"),
        _read_optional_duration(f["window"], f"{w}.window"),
        _enum(a.CompareOp, f["op"], f"{w}.op"),
        value,
    )


def _recency(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "recency", "which", "event", "op", "duration")
    return a.Recency(
        _enum(a.Which, f["which"], f"{w}.which"),
        _read_selector(f["event"], f"{w}.event"),
        _enum(a.RecencyOp, f["op"], f"{w}.op"),
        _read_duration(f["duration"], f"{w}.duration"),
    )


def _in_segment(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "in_segment", "segment")
    return a.InSegment(_text(f, "segment", w))


def _not(d: Any, w: str) -> a.Condition:
    f = _fields(d, w, "not", "item")
    return a.Not(_read_node(f["item"], f"{w}.item"))


def _items(d: Any, w: str, kind: str) -> tuple[a.Condition, ...]:
    f = _fields(d, w, kind, "items")
    items = f["items"]
    if not isinstance(items, list) or len(items) < 2:
        raise ValueError(f"{w}.items: {kind} needs a list of at least two conditions")
    return tuple(_read_node(item, f"{w}.items[{i}]") for i, item in enumerate(items))


def _and(d: Any, w: str) -> a.Condition:
    return a.And(_items(d, w, "and"))


def _or(d: Any, w: str) -> a.Condition:
    return a.Or(_items(d, w, "or"))


_READERS: dict[str, Callable[[Any, str], a.Condition]] = {
    "compare": _compare,
    "between": _between,
    "in_list": _in_list,
    "text_match": _text_match,
    "known": _known,
    "date_compare": _date_compare,
    "ago": _ago,
    "event_count": _event_count,
    "aggregate": _aggregate,
    "recency": _recency,
    "in_segment": _in_segment,
    "not": _not,
    "and": _and,
    "or": _or,
}
