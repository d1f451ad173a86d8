"""Producers post events; auditors read the log."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, request
from marshmallow import Schema, ValidationError

from api import schemas as s
from api.problems import Problem, field_errors
from api.web import (
    bad_query,
    cursor_arg,
    dump,
    encode_cursor,
    limit_arg,
    operation,
    raw_json_body,
    schedule_next,
    services,
    whole_number,
)
from engine.errors import InvalidEvents, NotYetApplied
from engine.service import ContactEvent
from eventstore.interface import EventIdReused, InvalidEventError

bp = Blueprint("events", __name__)
log = logging.getLogger(__name__)


@bp.post("/v1/events")
@operation(
    'Post one event, or a batch as {"events": [...]}: all stored or none; repeats acknowledged',
    "ingest",
    body=(s.EventIn, s.EventBatchIn),
    response=(s.ReceiptOut, s.ReceiptsOut),
    status=201,
    also={
        200: "every event was stored before: nothing new",
        202: "stored; another writer held the database, so membership is brought up to"
        " date shortly after, not yet: do not send the events again",
    },
    errors=(400, 409, 413, 415, 422),
)
def post_events() -> Response:
    body = raw_json_body()
    limit = current_app.config["MAX_BATCH"]
    if isinstance(body, dict) and "events" in body:
        if isinstance(body["events"], list) and len(body["events"]) > limit:
            raise Problem(
                413,
                "Batch too large",
                f"a batch holds at most {limit} events; this one has {len(body['events'])}",
                [{"field": "events", "message": f"at most {limit} events"}],
            )
        loaded = _load(s.EventBatchIn(), body, "events")
        single = False
    else:
        loaded = [_load(s.EventIn(), body, None)]
        single = True
    try:
        receipts = services().service.ingest([ContactEvent(**e) for e in loaded])
        status = 200 if all(r.duplicate for r in receipts) else 201
        schedule_next()
    except (InvalidEvents, InvalidEventError, EventIdReused) as exc:
        raise _refused(exc, single) from exc
    except NotYetApplied as exc:
        # Stored, so not to be sent again (events without ids would be stored twice); the
        # scheduler brings membership up to date as soon as the database is free.
        schedule_next(pending=True)
        if not exc.busy:
            log.error("stored events could not be applied", exc_info=exc.__cause__)
            raise Problem(
                500,
                "Stored, not applied yet",
                "the events were stored, but applying them to membership failed (an internal"
                " error, logged); do not send them again",
                events=s.ReceiptOut(many=True).dump(exc.stored),
            ) from exc
        receipts, status = exc.stored, 202
    if single:
        return dump(s.ReceiptOut(), receipts[0], status)
    return dump(s.ReceiptsOut(), {"events": receipts}, status)


def _load(schema: Schema, body: Any, batch: str | None) -> Any:
    """The body loaded by the schema; refused, the 422 names every problem: also events
    dated too far ahead among those the schema found wrong in other ways, or beside them."""
    try:
        loaded = schema.load(body)
    except ValidationError as exc:
        errors = field_errors(exc.messages)
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        items = valid.get(batch) if batch else [valid]
        if isinstance(items, list):
            occurred = [e.get("occurred_at") if isinstance(e, dict) else None for e in items]
            prefix = f"{batch}." if batch else ""
            errors += [
                {"field": f"{prefix}{i}.{field}" if batch else field, "message": why}
                for i, field, why in services().service.too_far_ahead(occurred)
            ]
            errors.sort(key=_item_order)
        raise Problem(
            422, "Invalid input", "the request body does not have the expected shape", errors
        ) from exc
    return loaded[batch] if batch else loaded


def _item_order(error: dict[str, Any]) -> tuple[int, str]:
    """events.12.type after events.2.occurred_at; a field of a single event, or of the
    body, first."""
    parts = error["field"].split(".")
    if len(parts) > 1 and parts[1].isdigit():
        return int(parts[1]), error["field"]
    return -1, error["field"]


def _refused(exc: InvalidEvents | InvalidEventError | EventIdReused, single: bool) -> Problem:
    """The problem that names each event of the request that cannot be stored, and where."""

    def where(index: int, field: str) -> str:
        return field if single else f"events.{index}.{field}"

    if isinstance(exc, EventIdReused):
        why = "names another event already: a new event needs a new id, a retry the same content"
        fields = [where(i, "event_id") for i in exc.indexes]
        return Problem(
            409,
            "Event id reused",
            f"{', '.join(fields)} {why}",
            [{"field": field, "message": why} for field in fields],
        )
    if isinstance(exc, InvalidEventError):
        # What the schema lets through and the log cannot hold is in the properties.
        items = [(exc.index, "properties", exc.message)]
    else:
        items = exc.items
    errors = [{"field": where(i, field), "message": why} for i, field, why in items]
    detail = "; ".join(f"{e['field']} {e['message']}" for e in errors)
    return Problem(422, "Invalid input", detail, errors)


@bp.get("/v1/events")
@operation(
    "Read the log in order, for auditors",
    "read",
    response=s.EventPageOut,
    query={
        "after": "a position; events after it",
        "cursor": "next_cursor of the previous page",
        "limit": "page size, 1-1000",
    },
    errors=(400,),
)
def get_events() -> Response:
    after = cursor_arg(int)
    if after is None:
        after = _after_arg()
    elif "after" in request.args:
        raise bad_query("after", "not with cursor", "give after or cursor, not both")
    limit = limit_arg()
    events = services().service.events(after, limit + 1)
    more = len(events) > limit
    events = events[:limit]
    return dump(
        s.EventPageOut(),
        {"events": events, "next_cursor": encode_cursor(events[-1].position) if more else None},
    )


def _after_arg() -> int:
    text = request.args.get("after")
    if text is None:
        return 0
    after = whole_number(text)
    if after is None:
        raise bad_query("after", "a whole number", "after is a log position (a whole number)")
    return after
