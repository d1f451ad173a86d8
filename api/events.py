"""Producers post events; auditors read the log."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from api import schemas as s
from api.problems import Problem
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
from engine.errors import NotYetApplied
from engine.service import ContactEvent

bp = Blueprint("events", __name__)


@bp.post("/v1/events")
@operation(
    'Post one event, or a batch as {"events": [...]}: all stored or none; repeats acknowledged',
    "ingest",
    body=s.EventIn,
    response=s.ReceiptsOut,
    status=201,
    also={
        200: "every event was stored before: nothing new",
        202: "stored; another writer held the database, so membership is brought up to"
        " date shortly after, not yet: do not send the events again",
    },
    errors=(400, 413, 415, 422),
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
        loaded = s.EventBatchIn().load(body)["events"]
        single = False
    else:
        loaded = [s.EventIn().load(body)]
        single = True
    try:
        receipts = services().service.ingest([ContactEvent(**e) for e in loaded])
        status = 200 if all(r.duplicate for r in receipts) else 201
        schedule_next()
    except NotYetApplied as exc:
        # Stored, so not to be sent again (events without ids would be stored twice); the
        # scheduler brings membership up to date as soon as the database is free.
        receipts, status = exc.stored, 202
        schedule_next(pending=True)
    if single:
        return dump(s.ReceiptOut(), receipts[0], status)
    return dump(s.ReceiptsOut(), {"events": receipts}, status)


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
