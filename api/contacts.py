"""A contact: its properties, its events, and the segments it is in (now or at any instant)."""

from __future__ import annotations

from flask import Blueprint, Response

from api import schemas as s
from api.web import (
    contact_arg,
    cursor_arg,
    dump,
    encode_cursor,
    instant_arg,
    limit_arg,
    operation,
    services,
)
from engine.segments import Segment

bp = Blueprint("contacts", __name__)


def _segment_row(segment: Segment, since: int | None) -> dict:
    return {"id": segment.id, "name": segment.name, "kind": segment.kind, "since": since}


@bp.get("/v1/contacts/<contact_id>")
@operation(
    "A contact's properties now and its current segments (also one only a static list names)",
    "read",
    response=s.ContactOut,
    errors=(400, 404),
)
def get_contact(contact_id: str) -> Response:
    contact_id = contact_arg(contact_id)
    service = services().service
    properties, stored, current = service.contact(contact_id)
    return dump(
        s.ContactOut(),
        {
            "contact_id": contact_id,
            "properties": properties,
            # None for a contact only a static list names: it has done nothing yet.
            "exists_from": min((e.occurred_at for e in stored), default=None),
            "event_count": len(stored),
            "segments": [_segment_row(seg, since) for seg, since in current],
        },
    )


@bp.get("/v1/contacts/<contact_id>/events")
@operation(
    "A contact's events in the order they were recorded",
    "read",
    response=s.EventPageOut,
    query={"cursor": "next_cursor of the previous page", "limit": "page size, 1-1000"},
    errors=(400, 404),
)
def get_contact_events(contact_id: str) -> Response:
    contact_id = contact_arg(contact_id)
    after = cursor_arg(int) or 0
    limit = limit_arg()
    page = services().service.contact_events(contact_id, after, limit + 1)
    more = len(page) > limit
    page = page[:limit]
    return dump(
        s.EventPageOut(),
        {"events": page, "next_cursor": encode_cursor(page[-1].version) if more else None},
    )


@bp.get("/v1/contacts/<contact_id>/segments")
@operation(
    "The segments a contact is in, now or at an instant",
    "read",
    response=s.ContactSegmentsOut,
    query={"at": "an ISO-8601 instant; default now"},
    errors=(400,),
)
def get_contact_segments(contact_id: str) -> Response:
    contact_id = contact_arg(contact_id)
    service = services().service
    at = instant_arg()
    found = service.contact_segments(contact_id, at)
    return dump(
        s.ContactSegmentsOut(),
        {
            "contact_id": contact_id,
            "at": service.clock() if at is None else at,
            "segments": [_segment_row(seg, since) for seg, since in found],
        },
    )
