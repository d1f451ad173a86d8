"""marshmallow schemas: what the API accepts and what it answers (also the OpenAPI document)."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.rule_schema import ref
from grammar import vocabulary

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
DAY_MS = 86_400_000
# Instants the API takes in: the years ISO-8601 writes with four digits, in UTC.
FIRST_INSTANT = (datetime(1, 1, 1, tzinfo=UTC) - EPOCH) // MS
LAST_INSTANT = (datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC) - EPOCH) // MS
ID = validate.Length(min=1, max=200)
MAX_NESTING = 32  # of objects and arrays in a property's value
EVENT_TYPE = validate.Regexp(
    rf"^{vocabulary.EVENT_TYPE.pattern}\Z", error=vocabulary.EVENT_TYPE_TEXT
)
# Ids: no control character, nothing str.strip() would take off either end; a contact id (in
# URLs) no '/' either, and not "." or "..". Patterns that mean the same in Python and in
# ECMA-262, so that the OpenAPI document states them.
_CONTROL = r"\x00-\x1f\x7f"
_SPACE = r"\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000 "
# (How long an id may be is the length validator's to say.)
ID_PATTERN = rf"^(?:[^{_CONTROL}{_SPACE}](?:[^{_CONTROL}]*[^{_CONTROL}{_SPACE}])?)?\Z"
CONTACT_ID_PATTERN = (
    rf"^(?!\.\.?$)(?:[^{_CONTROL}{_SPACE}/](?:[^{_CONTROL}/]*[^{_CONTROL}{_SPACE}/])?)?\Z"
)
NAME_TEXT = validate.Regexp(r"^[^\x00-\x1f\x7f]*\Z", error="a name has no control characters")
# Text of several lines: tabs and line breaks, but no other control character.
TEXT = validate.Regexp(
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*\Z",
    error="text has no control characters but tabs and line breaks",
)


class InstantOutOfRange(ValueError):
    """An instant outside the years 0001-9999 in UTC."""


class NoSuchInstant(ValueError):
    """An instant written as one should be that names a day or time that does not exist."""


# Instants are Unix time (RULES.md: UTC in milliseconds), which has no leap seconds.
NO_SUCH_INSTANT = "a day, a time of day or an offset that does not exist (no leap seconds here)"


# RFC 3339's profile of ISO-8601, which the API writes; Python's fromisoformat also reads
# others (2026-11-24T10Z, 20261124T100000Z) that many a client's parser does not.
INSTANT_SHAPE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=4096)  # a batch's receipts share one recorded_at
def format_instant(ms: int | None) -> str | None:
    """UTC milliseconds as ISO-8601 with milliseconds and Z. Any instant: one computed from
    another (a deadline, a window's start) may lie beyond the years 0000-9999, and is then
    written with a sign and six digits of year, as JavaScript does (+010000-01-30T...)."""
    if ms is None:
        return None
    days, rest = divmod(ms, DAY_MS)
    year, month, day = _civil_from_days(days)
    hours, rest = divmod(rest, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    y = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+07d}"
    return f"{y}-{month:02d}-{day:02d}T{hours:02d}:{minutes:02d}:{seconds:02d}.{millis:03d}Z"


def _civil_from_days(days: int) -> tuple[int, int, int]:
    """Year, month and day of the proleptic Gregorian calendar, `days` after 1970-01-01
    (H. Hinnant's days_from_civil inverse, valid for any integer)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def parse_instant(text: str) -> int:
    """ISO-8601 with a time zone (RFC 3339), to UTC milliseconds; ValueError otherwise
    (NoSuchInstant for February 30th, InstantOutOfRange outside the years 0001-9999 in UTC)."""
    if not INSTANT_SHAPE.fullmatch(text):
        raise ValueError("not an instant in the shape 2026-11-20T09:15:00.250Z")
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError as exc:
        if text.startswith("0000"):
            raise InstantOutOfRange(text) from exc
        raise NoSuchInstant(text) from exc
    ms = (moment - EPOCH) // MS
    if not FIRST_INSTANT <= ms <= LAST_INSTANT:
        raise InstantOutOfRange(text)
    return ms


class Instant(fields.Field):
    """An instant: ISO-8601 with a time zone in, UTC with milliseconds and Z out."""

    default_error_messages = {
        "invalid": "not an ISO-8601 instant with a time zone, such as 2026-11-20T09:15:00.250Z",
        "no_such": f"names {NO_SUCH_INSTANT}",
        "range": "outside the years 0001-9999 in UTC",
    }

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return format_instant(value)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return parse_instant(value)
        except InstantOutOfRange as exc:
            raise self.make_error("range") from exc
        except NoSuchInstant as exc:
            raise self.make_error("no_such") from exc
        except ValueError as exc:
            raise self.make_error("invalid") from exc


class Identifier(fields.String):
    """A contact or event id: 1-200 characters, no control characters; with `in_urls` (a
    contact id, which paths such as /v1/contacts/{id} name) no '/' either."""

    def __init__(self, *, in_urls: bool = False, **kwargs: Any) -> None:
        pattern = CONTACT_ID_PATTERN if in_urls else ID_PATTERN
        metadata = {"pattern": pattern, **kwargs.pop("metadata", {})}
        super().__init__(validate=ID, metadata=metadata, **kwargs)
        self.in_urls = in_urls

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not _ID.match(text):
            raise ValidationError("ids have no control characters and no surrounding spaces")
        if self.in_urls and not _CONTACT_ID.match(text):
            # Clients resolve /contacts/../segments to /segments before sending it.
            raise ValidationError("contact ids have no '/' and are not '.' or '..': URLs name them")
        return text


_ID = re.compile(ID_PATTERN)
_CONTACT_ID = re.compile(CONTACT_ID_PATTERN)


class Properties(fields.Dict):
    """An object of properties: names of 1-200 characters, any JSON values."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict:
        if not isinstance(value, dict):
            raise self.make_error("invalid")
        # The names are checked in one pass, not as a field each: a batch holds thousands.
        for name, item in value.items():  # JSON names are text
            problem = vocabulary.property_name_problem(name)
            if problem is not None:
                raise ValidationError(problem)
            if isinstance(item, dict | list) and _nesting(item) > MAX_NESTING:
                raise ValidationError(
                    f"the value of {name!r} is nested more than {MAX_NESTING} levels deep"
                )
        return value


def _nesting(value: Any) -> int:
    """How deep JSON objects and arrays nest in a value (1 for a flat one)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        inner = item.values() if isinstance(item, dict) else item
        stack += [(v, depth + 1) for v in inner if isinstance(v, dict | list)]
    return deepest


# ---- producers ----


class EventIn(Schema):
    event_id = Identifier(metadata={"description": "idempotency key; a fresh one if absent"})
    contact_id = Identifier(required=True, in_urls=True)
    type = fields.String(required=True, validate=EVENT_TYPE)
    occurred_at = Instant(metadata={"description": "event time; the time of receipt if absent"})
    properties = Properties(
        load_default=dict,
        metadata={"description": "for contact_updated, the properties set (null: unknown again)"},
    )


class EventBatchIn(Schema):
    events = fields.List(fields.Nested(EventIn), required=True)


class ReceiptOut(Schema):
    event_id = fields.String()
    position = fields.Integer()
    recorded_at = Instant()
    duplicate = fields.Boolean(metadata={"description": "stored before; not stored again"})


class ReceiptsOut(Schema):
    events = fields.List(fields.Nested(ReceiptOut))


class StoredEventOut(Schema):
    position = fields.Integer()
    event_id = fields.String()
    stream = fields.String()
    version = fields.Integer()
    type = fields.String()
    occurred_at = Instant()
    recorded_at = Instant()
    data = fields.Dict()


class EventPageOut(Schema):
    events = fields.List(fields.Nested(StoredEventOut))
    next_cursor = fields.String(allow_none=True)


# ---- rules and segments ----


class RuleIn(Schema):
    rule = fields.String(required=True, validate=validate.Length(min=1))


class ProblemDetailOut(Schema):
    field = fields.String()
    line = fields.Integer()
    column = fields.Integer()
    message = fields.String()
    expected = fields.List(fields.String())
    hint = fields.String(allow_none=True)


class RuleReadsOut(Schema):
    event_types = fields.List(fields.String(allow_none=True))
    properties = fields.List(fields.String())
    segments = fields.List(fields.String())
    longest_window_ms = fields.Integer(allow_none=True)


NOTES = (
    "readings of the rule, valid as it stands, that may not be the ones meant (an `and`"
    " after a where condition joins the rule), each with a hint"
)


class RuleOut(Schema):
    valid = fields.Boolean()
    rule = fields.String(metadata={"description": "the canonical text"})
    ast = fields.Dict(
        metadata={"description": "the rule's syntax tree", "allOf": [ref("RuleNode")]}
    )
    reads = fields.Nested(RuleReadsOut)
    notes = fields.List(fields.Nested(ProblemDetailOut), metadata={"description": NOTES})


class SegmentIn(Schema):
    name = fields.String(required=True, validate=[validate.Length(min=1, max=200), NAME_TEXT])
    kind = fields.String(load_default="dynamic", validate=validate.OneOf(["dynamic", "static"]))
    rule = fields.String(validate=validate.Length(min=1))
    description = fields.String(validate=[validate.Length(max=2000), TEXT], allow_none=True)

    @validates_schema
    def _rule_matches_kind(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["kind"] == "dynamic" and "rule" not in data:
            raise ValidationError("a dynamic segment needs a rule", "rule")
        if data["kind"] == "static" and "rule" in data:
            raise ValidationError("a static list has no rule", "rule")


class RuleVersionOut(Schema):
    version = fields.Integer()
    rule = fields.String()
    since = Instant()


class SegmentOut(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    rule = fields.String(allow_none=True)
    version = fields.Integer()
    description = fields.String(allow_none=True)
    created_at = Instant()
    archived_at = Instant(allow_none=True)
    member_count = fields.Integer()
    references = fields.List(fields.String())
    versions = fields.List(fields.Nested(RuleVersionOut))
    notes = fields.List(
        fields.Nested(ProblemDetailOut),
        metadata={"description": f"in the answer to a create or a rule change: {NOTES}"},
    )


class SegmentListOut(Schema):
    segments = fields.List(fields.Nested(SegmentOut))
    next_cursor = fields.String(allow_none=True)


class PreviewIn(Schema):
    rule = fields.String(required=True, validate=validate.Length(min=1))
    at = Instant()
    sample = fields.Integer(load_default=20, strict=True, validate=validate.Range(min=0, max=1000))


class PreviewOut(Schema):
    rule = fields.String()
    at = Instant()
    count = fields.Integer()
    sample = fields.List(fields.String())
    notes = fields.List(fields.Nested(ProblemDetailOut), metadata={"description": NOTES})


class StaticEditIn(Schema):
    add = fields.List(
        Identifier(in_urls=True), load_default=list, validate=validate.Length(max=10_000)
    )
    remove = fields.List(
        Identifier(in_urls=True), load_default=list, validate=validate.Length(max=10_000)
    )

    @validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data["add"] and not data["remove"]:
            raise ValidationError("give contacts to add or to remove", "add")
        both = set(data["add"]) & set(data["remove"])
        if both:
            raise ValidationError(f"added and removed at once: {sorted(both)[:5]}", "remove")


class MemberOut(Schema):
    contact_id = fields.String()
    since = Instant(
        allow_none=True,
        metadata={
            "description": "when the current stay began; null in an as-of answer (at=), which"
            " is evaluated from the log rather than read from the transitions"
        },
    )


class MembersOut(Schema):
    segment_id = fields.String()
    at = Instant()
    members = fields.List(fields.Nested(MemberOut))
    next_cursor = fields.String(allow_none=True)


class CauseOut(Schema):
    kind = fields.String(
        metadata={"description": "event, list_edit, created, rule_changed, archived or time"}
    )
    position = fields.Integer(allow_none=True)
    boundary = Instant(allow_none=True)


class TransitionOut(Schema):
    contact_id = fields.String()
    kind = fields.String()
    at = Instant()
    rule_version = fields.Integer()
    cause = fields.Nested(CauseOut)


class TransitionsOut(Schema):
    segment_id = fields.String()
    transitions = fields.List(fields.Nested(TransitionOut))
    next_cursor = fields.String(allow_none=True)


# Events an explanation lists per clause (the latest ones): by default, and at most.
EVIDENCE, MAX_EVIDENCE = 1_000, 100_000
EXPLANATION_KINDS = (
    "membership",
    "and",
    "or",
    "not",
    "event",
    "aggregate",
    "recency",
    "property",
    "segment",
    "static_list",
)


class ExplanationOut(Schema):
    kind = fields.String(metadata={"enum": list(EXPLANATION_KINDS)})
    text = fields.String(metadata={"description": "the node's part of the rule, canonical"})
    value = fields.Boolean()
    next_change = Instant(
        allow_none=True,
        metadata={"description": "when the value can next change with no new event"},
    )
    details = fields.Dict(
        metadata={
            "description": "the evidence, by kind. event: event_type, count, events (the"
            " latest `evidence` of them: event_id, position, occurred_at), window (after,"
            " until). aggregate: the same with function, property and aggregate (null if"
            " unknown, or for a total beyond a double). recency:"
            " which (first or last), threshold, events (the one that counts). property:"
            " property, value, set_by (the event that set it). segment: segment_id, and the"
            " segment's own tree as the child (once per explanation: referred to again, its"
            " membership node has shown_above true and no children). membership:"
            " contact_exists, exists_from, and"
            " at the root segment_id and rule_version"
        }
    )
    children = fields.List(fields.Nested(lambda: ExplanationOut()))


class ExplainOut(Schema):
    segment_id = fields.String()
    contact_id = fields.String()
    at = Instant()
    member = fields.Boolean()
    rule_version = fields.Integer(allow_none=True)
    explanation = fields.Nested(ExplanationOut)


# ---- contacts ----


class ContactSegmentOut(Schema):
    id = fields.String()
    name = fields.String()
    kind = fields.String()
    since = Instant(
        allow_none=True,
        metadata={
            "description": "when the current stay began; null in an as-of answer (at=), which"
            " is evaluated from the log rather than read from the transitions"
        },
    )


class ContactSegmentsOut(Schema):
    contact_id = fields.String()
    at = Instant()
    segments = fields.List(fields.Nested(ContactSegmentOut))


class ContactOut(Schema):
    contact_id = fields.String()
    properties = fields.Dict()
    exists_from = Instant(allow_none=True)
    event_count = fields.Integer()
    segments = fields.List(fields.Nested(ContactSegmentOut))


# ---- keys and health ----


class KeyIn(Schema):
    role = fields.String(
        required=True, validate=validate.OneOf(["admin", "marketer", "producer", "auditor"])
    )
    name = fields.String(load_default="", validate=[validate.Length(max=200), NAME_TEXT])


class KeyOut(Schema):
    key_id = fields.String()
    role = fields.String()
    name = fields.String()
    created_at = Instant()
    revoked_at = Instant(allow_none=True)
    key = fields.String(metadata={"description": "shown once, when the key is created"})


class KeysOut(Schema):
    keys = fields.List(fields.Nested(KeyOut))


class HealthOut(Schema):
    status = fields.String(
        metadata={"description": "ok; failing: membership cannot be brought up to date"}
    )
    log_position = fields.Integer()
    projected_position = fields.Integer()
    next_deadline = Instant(allow_none=True)
    failing_since = Instant(allow_none=True)
    catching_up_since = Instant(
        allow_none=True,
        metadata={
            "description": "since when a backlog of time-driven changes is being caught up"
            " (after downtime): meanwhile events are answered 202, reads of membership 503"
        },
    )
    error = fields.String(allow_none=True, metadata={"description": "the last failure, if any"})
