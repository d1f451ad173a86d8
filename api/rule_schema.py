"""A rule's AST as JSON (grammar/serialize.py), described as OpenAPI 3.0 components.

The AST is written by the grammar, never loaded through marshmallow, so its shape is stated
here as JSON Schema. Every enum is read off the grammar's own, so the two cannot drift.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from grammar import ast as a

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    """A reference to one of the components below."""
    return {"$ref": f"#/components/schemas/{name}"}


# OpenAPI 3.0 has no null type; `nullable` with `enum: [null]` is its strict way to say
# "null and nothing else" (OAI proposal 003), where `nullable` beside a $ref means nothing.
_NULL: Schema = {"type": "object", "nullable": True, "enum": [None]}


def _or_null(schema: Schema) -> Schema:
    return {"oneOf": [schema, _NULL]}


def _enum(kind: type[Enum]) -> Schema:
    return {"type": "string", "enum": [member.value for member in kind]}


def _object(kind: str, description: str, **properties: Schema) -> Schema:
    """An object with a fixed `kind`, the given properties, all required, and its `span`
    (present when the rule was parsed from text)."""
    return {
        "type": "object",
        "description": description,
        "properties": {
            "kind": {"type": "string", "enum": [kind]},
            **properties,
            "span": ref("RuleSpan"),
        },
        "required": ["kind", *properties],
        "additionalProperties": False,
    }


_PROP: Schema = {"type": "string", "description": "a contact or event property"}
_COUNT: Schema = {"type": "integer", "minimum": 0}
_NUMBER: Schema = {"type": "number"}
_VALUE = ref("RuleValue")
_DURATION = ref("RuleDuration")
_EVENT = ref("RuleEvent")
_NODE = ref("RuleNode")

# The conditions, by the kinds grammar/serialize.py writes.
_NODES: list[Schema] = [
    _object(
        "compare",
        '`country is "DE"`, `lead_score >= 50`',
        prop=_PROP,
        op=_enum(a.CompareOp),
        value=_VALUE,
    ),
    _object(
        "between",
        "`age between 18 and 34` (inclusive)",
        prop=_PROP,
        low=ref("RuleNumberOrDate"),
        high=ref("RuleNumberOrDate"),
    ),
    _object(
        "in_list",
        '`lifecycle_stage in ("lead", "mql")`; `negated` for `not in`',
        prop=_PROP,
        values={"type": "array", "items": _VALUE, "minItems": 1},
        negated={"type": "boolean"},
    ),
    _object(
        "text_match",
        '`email ends with "@acme.com"`',
        prop=_PROP,
        op=_enum(a.TextOp),
        value={"type": "string"},
    ),
    _object(
        "known",
        "`city is known` (`known`: true) or `is unknown` (false)",
        prop=_PROP,
        known={"type": "boolean"},
    ),
    _object(
        "date_compare",
        "`signed_up_at after 2026-01-01`",
        prop=_PROP,
        op=_enum(a.DateOp),
        value=ref("RuleDate"),
    ),
    _object(
        "ago",
        "`signed_up_at more than 30 days ago`",
        prop=_PROP,
        op=_enum(a.AgoOp),
        duration=_DURATION,
    ),
    _object(
        "event_count",
        "`opened email within 7 days`, `visited page at least 3 times`; `window` null:"
        " over all time",
        event=_EVENT,
        count=ref("RuleCount"),
        window=_or_null(_DURATION),
    ),
    _object(
        "aggregate",
        "`total amount of purchased within 90 days >= 500`",
        func=_enum(a.AggregateFunc),
        prop=_PROP,
        event=_EVENT,
        window=_or_null(_DURATION),
        op=_enum(a.CompareOp),
        value=_NUMBER,
    ),
    _object(
        "recency",
        "`last purchased more than 30 days ago`, `first purchased within 7 days`",
        which=_enum(a.Which),
        event=_EVENT,
        op=_enum(a.RecencyOp),
        duration=_DURATION,
    ),
    _object("in_segment", '`in segment "engaged"`', segment={"type": "string"}),
    _object("not", "`not X`", item=_NODE),
    _object("and", "`X and Y`", items={"type": "array", "items": _NODE, "minItems": 2}),
    _object("or", "`X or Y`", items={"type": "array", "items": _NODE, "minItems": 2}),
]

_PARTS: dict[str, Schema] = {
    "RuleSpan": {
        "type": "object",
        "description": "where the part stands in the rule's text (1-based; the end exclusive)",
        "properties": {
            name: {"type": "integer", "minimum": 1}
            for name in ("line", "column", "end_line", "end_column")
        },
        "required": ["line", "column", "end_line", "end_column"],
        "additionalProperties": False,
    },
    "RuleDate": _object(
        "date", "a date, as an instant", value={"type": "string", "format": "date-time"}
    ),
    "RuleValue": {
        "description": "a literal: text, number, true/false, or a date",
        "oneOf": [{"type": "string"}, _NUMBER, {"type": "boolean"}, ref("RuleDate")],
    },
    "RuleNumberOrDate": {"oneOf": [_NUMBER, ref("RuleDate")]},
    "RuleDuration": _object("duration", "`7 days`", amount=_COUNT, unit=_enum(a.Unit)),
    "RuleCount": _object(
        "count", "`at least 3 times`; a bare clause is at least 1", op=_enum(a.CountOp), n=_COUNT
    ),
    "RuleEvent": _object(
        "event",
        "the events a clause counts: `type` null for any event (`last activity`); `filter`"
        " (the `where` part) null for none",
        type={"type": "string", "nullable": True},
        filter=_or_null(_NODE),
    ),
}


def _name(kind: str) -> str:
    return "Rule" + kind.title().replace("_", "")  # in_list: RuleInList


def components() -> dict[str, Schema]:
    """The components that describe a rule's AST; `RuleNode` is any condition."""
    nodes = {node["properties"]["kind"]["enum"][0]: node for node in _NODES}
    node = {
        "description": "one condition of a rule, by `kind`",
        "oneOf": [ref(_name(kind)) for kind in nodes],
        "discriminator": {
            "propertyName": "kind",
            "mapping": {kind: ref(_name(kind))["$ref"] for kind in nodes},
        },
    }
    return {"RuleNode": node, **{_name(kind): n for kind, n in nodes.items()}, **_PARTS}
