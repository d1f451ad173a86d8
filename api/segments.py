"""Marketers validate rules, preview them and manage segments; auditors read membership,
transitions and explanations."""

from __future__ import annotations

import logging
import math
import re
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, request

from api import schemas as s
from api.problems import Problem, engine_problem, problem_response
from api.web import (
    contact_arg,
    cursor_arg,
    dump,
    encode_cursor,
    flag_arg,
    instant_arg,
    json_body,
    limit_arg,
    operation,
    schedule_next,
    services,
    whole_number,
)
from engine.errors import NotYetApplied, VersionMismatch
from engine.evaluate import Explanation
from engine.segments import Segment
from grammar import ast as a
from grammar import notes, parse, to_json

bp = Blueprint("segments", __name__)
log = logging.getLogger(__name__)
INSTANT_KEYS = {"occurred_at", "after", "until", "threshold", "exists_from"}


def segment_json(segment: Segment) -> dict[str, Any]:
    """A segment as the API shows it."""
    current = segment.current
    return {
        "id": segment.id,
        "name": segment.name,
        "kind": segment.kind,
        "rule": current.text if current else None,
        "version": segment.version,
        "description": segment.description,
        "created_at": segment.created_at,
        "archived_at": segment.archived_at,
        "member_count": services().service.projection.member_count(segment.id),
        "references": sorted(segment.references()),
        "versions": [
            {"version": v.version, "rule": v.text, "since": v.since} for v in segment.versions
        ],
    }


ETAG = 'the version of the segment\'s rule, such as "2", for If-Match'


def _etag(segment: Segment) -> dict[str, str]:
    return {"ETag": f'"{segment.version}"'}


@bp.errorhandler(NotYetApplied)
def _stored_not_applied(exc: NotYetApplied) -> Response:
    # The definition or edit is in the log: the scheduler applies it once the database is free.
    if not exc.busy:
        log.error("a stored change could not be applied", exc_info=exc.__cause__)
    schedule_next(pending=True)
    return problem_response(engine_problem(exc))


@bp.post("/v1/rules/validate")
@operation(
    "Check a rule: its canonical text and AST, or every problem with line, column and hint",
    "manage",
    body=s.RuleIn,
    response=s.RuleOut,
    errors=(400, 422),
)
def validate_rule() -> Response:
    body = json_body(s.RuleIn())
    checked = services().service.check_rule(body["rule"])
    longest = a.longest_window(checked.ast)
    return dump(
        s.RuleOut(),
        {
            "valid": True,
            "rule": checked.text,
            "ast": to_json(checked.ast),
            "reads": {
                "event_types": sorted(a.event_types(checked.ast), key=lambda t: t or ""),
                "properties": sorted(a.contact_properties(checked.ast)),
                "segments": sorted(set(checked.references.values())),
                "longest_window_ms": longest,
            },
            "notes": _notes_json(checked.ast, body["rule"]),
        },
    )


def _notes_json(rule: a.Condition, text: str) -> list[dict[str, Any]]:
    return [{"field": "rule", **asdict(n), "expected": list(n.expected)} for n in notes(rule, text)]


@bp.post("/v1/segments/preview")
@operation(
    "How many contacts a rule would hold (now or at an instant), and a sample; nothing is saved",
    "manage",
    body=s.PreviewIn,
    response=s.PreviewOut,
    errors=(400, 422),
)
def preview() -> Response:
    body = json_body(s.PreviewIn())
    found = services().service.preview(body["rule"], body.get("at"), body["sample"])
    noted = _notes_json(parse(body["rule"]), body["rule"])  # where the marketer wrote them
    return dump(s.PreviewOut(), {**asdict(found), "notes": noted})


@bp.post("/v1/segments")
@operation(
    'Define a dynamic segment {"name", "rule"} or a static list {"name", "kind": "static"}',
    "manage",
    body=s.SegmentIn,
    response=s.SegmentOut,
    response_headers={"ETag": ETAG, "Location": "the segment's URL"},
    status=201,
    errors=(400, 409, 422),
)
def create_segment() -> Response:
    body = json_body(s.SegmentIn())
    segment = services().service.define_segment(
        body["name"], body.get("rule"), body["kind"], body.get("description")
    )
    schedule_next()
    headers = {**_etag(segment), "Location": f"/v1/segments/{segment.id}"}
    return dump(s.SegmentOut(), _with_notes(segment, body.get("rule")), 201, headers)


@bp.get("/v1/segments")
@operation(
    "Every segment",
    "read",
    response=s.SegmentListOut,
    query={
        "archived": "true to include archived segments",
        "cursor": "next_cursor of the previous page",
        "limit": "page size, 1-1000",
    },
    errors=(400,),
)
def list_segments() -> Response:
    after = cursor_arg(str)
    limit = limit_arg()
    archived = flag_arg("archived")
    found = [x for x in services().service.segments(archived) if after is None or x.id > after]
    page = found[:limit]
    more = len(found) > limit
    return dump(
        s.SegmentListOut(),
        {
            "segments": [segment_json(x) for x in page],
            "next_cursor": encode_cursor(page[-1].id) if more else None,
        },
    )


@bp.get("/v1/segments/<segment_id>")
@operation(
    "One segment, with its rule versions",
    "read",
    response=s.SegmentOut,
    errors=(404,),
    response_headers={"ETag": ETAG},
)
def get_segment(segment_id: str) -> Response:
    segment = services().service.segment(segment_id)
    return dump(s.SegmentOut(), segment_json(segment), headers=_etag(segment))


@bp.put("/v1/segments/<segment_id>")
@operation(
    "A new version of a segment's rule; If-Match must carry the current ETag",
    "manage",
    body=s.RuleIn,
    response=s.SegmentOut,
    errors=(400, 404, 409, 412, 422, 428),
    headers={
        "If-Match": (
            True,
            'the ETag of the version read, such as "1" (or a list: "1", "2"); * for any',
        )
    },
    response_headers={"ETag": ETAG},
)
def put_segment(segment_id: str) -> Response:
    body = json_body(s.RuleIn())
    if_match = _if_match(segment_id)
    segment = services().service.change_rule(segment_id, body["rule"], if_match)
    schedule_next()
    return dump(s.SegmentOut(), _with_notes(segment, body["rule"]), headers=_etag(segment))


def _with_notes(segment: Segment, rule: str | None) -> dict[str, Any]:
    """A segment as just defined or changed, with the notes on its rule as written."""
    found = segment_json(segment)
    if rule is not None:
        found["notes"] = _notes_json(parse(rule), rule)
    return found


def _if_match(segment_id: str, required: bool = True) -> int | None:
    """The version If-Match names (None: any, or, if not required, no header)."""
    header = request.headers.get("If-Match")
    if header is None:
        if not required:
            return None
        raise Problem(
            428,
            "Precondition required",
            'send If-Match with the ETag of the version you read (for example If-Match: "1")',
        )
    text = header.strip()
    if text == "*":
        return None
    if not _ETAG_LIST.fullmatch(text):
        why = 'If-Match is * or ETags such as "3", "4"'
        raise Problem(400, "Invalid If-Match", why, [{"field": "If-Match", "message": why}])
    # Compared strongly (RFC 9110, 13.1.1): a weak ETag matches nothing, and "01" is not "1".
    versions = [
        version
        for weak, tag in _ETAG.findall(text)
        if not weak and (version := whole_number(tag)) is not None and str(version) == tag
    ]
    segment = services().service.segment(segment_id)
    current = segment.version
    if current in versions or segment.archived_at is not None:
        return current  # the engine checks it again under its lock (and refuses an archived one)
    if versions:
        raise VersionMismatch(versions[0], current)
    raise Problem(
        412,
        "The segment has changed",
        f'no ETag in If-Match is the segment\'s ("{current}"); a weak ETag never matches',
        current_version=current,
    )


_ETAG = re.compile(r'(W/)?"([^"]*)"')
_ONE_ETAG = r'(?:W/)?"[\x21\x23-\x7e\x80-\xff]*"'
# A list by commas, whose empty elements a recipient ignores (RFC 9110, 5.6.1.2).
_ETAG_LIST = re.compile(rf"(?:,[ \t]*)*{_ONE_ETAG}(?:(?:[ \t]*,)+[ \t]*{_ONE_ETAG})*(?:[ \t]*,)*")


@bp.delete("/v1/segments/<segment_id>")
@operation(
    "Archive a segment: its members leave; the log keeps everything (If-Match: only if the"
    " segment is at that version)",
    "manage",
    response=s.SegmentOut,
    errors=(404, 409, 412),
    headers={"If-Match": (False, "archive only if the segment is at this ETag's version")},
)
def archive_segment(segment_id: str) -> Response:
    segment = services().service.archive(segment_id, _if_match(segment_id, required=False))
    schedule_next()
    return dump(s.SegmentOut(), segment_json(segment))


@bp.get("/v1/segments/<segment_id>/members")
@operation(
    "A segment's members, now or at an instant",
    "read",
    response=s.MembersOut,
    query={
        "at": "an ISO-8601 instant; default now",
        "cursor": "next_cursor of the previous page",
        "limit": "page size, 1-1000",
    },
    errors=(400, 404),
)
def get_members(segment_id: str) -> Response:
    service = services().service
    at = instant_arg()
    after = cursor_arg(str)
    members, next_after = service.members(segment_id, at, after, limit_arg())
    return dump(
        s.MembersOut(),
        {
            "segment_id": segment_id,
            "at": service.clock() if at is None else at,
            "members": [asdict(m) for m in members],
            "next_cursor": encode_cursor(next_after),
        },
    )


@bp.post("/v1/segments/<segment_id>/members")
@operation(
    'Add contacts to, or remove them from, a static list: {"add": [...], "remove": [...]}',
    "manage",
    body=s.StaticEditIn,
    response=s.SegmentOut,
    errors=(400, 404, 409, 422),
)
def edit_members(segment_id: str) -> Response:
    body = json_body(s.StaticEditIn())
    segment = services().service.edit_static(segment_id, body["add"], body["remove"])
    schedule_next()
    return dump(s.SegmentOut(), segment_json(segment))


@bp.get("/v1/segments/<segment_id>/transitions")
@operation(
    "Who entered and left a segment, when, under which rule version, and why",
    "read",
    response=s.TransitionsOut,
    query={
        "contact": "only this contact's transitions",
        "cursor": "next_cursor of the previous page",
        "limit": "page size, 1-1000",
    },
    errors=(400, 404),
)
def get_transitions(segment_id: str) -> Response:
    after = cursor_arg(int) or 0
    rows, next_after = services().service.transitions(
        segment_id, request.args.get("contact"), after, limit_arg()
    )
    return dump(
        s.TransitionsOut(),
        {
            "segment_id": segment_id,
            "transitions": [
                {
                    "contact_id": t.contact_id,
                    "kind": t.kind,
                    "at": t.at,
                    "rule_version": t.rule_version,
                    "cause": {
                        "kind": t.cause.kind,
                        "position": t.cause.position,
                        "boundary": t.at if t.cause.kind == "time" else None,
                    },
                }
                for t in rows
            ],
            "next_cursor": encode_cursor(next_after),
        },
    )


@bp.get("/v1/segments/<segment_id>/explain/<contact_id>")
@operation(
    "Why a contact is, or is not, in a segment at an instant: the rule's tree with its evidence",
    "read",
    response=s.ExplainOut,
    query={
        "at": "an ISO-8601 instant; default now",
        "evidence": f"events listed per clause, the latest; {s.EVIDENCE:,} by default, at"
        f" most {s.MAX_EVIDENCE:,}, and {s.MAX_EVIDENCE:,} in all (each clause's count counts"
        " them all)",
    },
    errors=(400, 404),
)
def explain(segment_id: str, contact_id: str) -> Response:
    contact_id = contact_arg(contact_id)
    service = services().service
    at = instant_arg()
    evidence = limit_arg(s.EVIDENCE, s.MAX_EVIDENCE, "evidence")
    t = service.clock() if at is None else at
    tree = service.explain(segment_id, contact_id, t)
    return dump(
        s.ExplainOut(),
        {
            "segment_id": segment_id,
            "contact_id": contact_id,
            "at": t,
            "member": tree.value,
            "rule_version": tree.details.get("rule_version"),
            "explanation": explanation_json(tree, evidence),
        },
    )


def explanation_json(
    node: Explanation, evidence: int, total: int = s.MAX_EVIDENCE
) -> dict[str, Any]:
    """An explanation tree with the instants in its details written as ISO-8601, and at
    most the latest `evidence` events listed per clause, `total` in all (a contact with a
    million page views would otherwise be explained with a million events, and a rule of
    fifty clauses with fifty times as many)."""
    return _explanation_json(node, evidence, [total])


def _explanation_json(node: Explanation, evidence: int, left: list[int]) -> dict[str, Any]:
    details = dict(node.details)
    if "events" in details:
        events = details["events"]
        details["events"] = events[max(0, len(events) - min(evidence, left[0])) :]
        left[0] -= len(details["events"])
    return {
        "kind": node.kind,
        "text": node.text,
        "value": node.value,
        "next_change": node.next_change,
        "details": _details_json(details),
        "children": [_explanation_json(c, evidence, left) for c in node.children],
    }


def _details_json(value: Any, key: str | None = None) -> Any:
    """A node's details for JSON: instants as ISO-8601; a total beyond a double (1e308 +
    1e308) as null, since JSON has no Infinity."""
    if key == "value":
        return value  # a property's value, the contact's own data: shown as it was set
    if isinstance(value, dict):
        return {k: _details_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_details_json(v, key) for v in value]
    if key in INSTANT_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return s.format_instant(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
