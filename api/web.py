"""What every route shares: the services, JSON bodies, query arguments, cursors, and the
operation metadata from which the OpenAPI document is built."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Response, current_app, g, request
from marshmallow import Schema

from api.problems import Problem
from api.schemas import parse_instant
from engine.service import Service
from eventstore.sqlite_keys import SQLiteKeyStore

ROLE_PERMISSIONS = {
    "admin": {"ingest", "read", "manage", "keys"},
    "marketer": {"read", "manage"},
    "producer": {"ingest"},
    "auditor": {"read"},
}
PERMISSION_WORDS = {
    "ingest": "post events",
    "read": "read segments, contacts and the log",
    "manage": "define segments or preview rules",
    "keys": "manage API keys",
}


@dataclass
class Services:
    """What the app factory wires together."""

    service: Service
    keys: SQLiteKeyStore
    scheduler: Any = None


def services() -> Services:
    """The current app's services."""
    return current_app.extensions["segments"]


@dataclass(frozen=True)
class Operation:
    """How a route appears in the OpenAPI document."""

    summary: str
    permission: str | None
    body: type[Schema] | None = None
    response: type[Schema] | None = None
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()


def operation(
    summary: str,
    permission: str | None,
    *,
    body: type[Schema] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    query: dict[str, str] | None = None,
    errors: tuple[int, ...] = (),
) -> Callable:
    """Declare a route's documentation and the permission it needs (None: public)."""
    meta = Operation(summary, permission, body, response, status, query or {}, errors)

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if permission is not None:
                _authorize(permission)
            return view(*args, **kwargs)

        guarded.operation = meta  # type: ignore[attr-defined]
        return guarded

    return decorate


def _authorize(permission: str) -> None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    challenge = {"WWW-Authenticate": 'Bearer realm="segments"'}
    if scheme.lower() != "bearer" or not key.strip():
        raise Problem(
            401, "Unauthorized", "send an API key: Authorization: Bearer <key>", headers=challenge
        )
    record = services().keys.verify(key.strip())
    if record is None:
        raise Problem(
            401, "Unauthorized", "the API key is not valid or was revoked", headers=challenge
        )
    if permission not in ROLE_PERMISSIONS.get(record.role, ()):
        raise Problem(
            403, "Forbidden", f"the {record.role} role may not {PERMISSION_WORDS[permission]}"
        )
    g.api_key = record


def json_body(schema: Schema) -> Any:
    """The request's JSON body, loaded by a schema (400/415/422 problems otherwise)."""
    if not request.is_json:
        raise Problem(
            415, "Unsupported media type", "send JSON with Content-Type: application/json"
        )
    raw = request.get_data(cache=True)
    try:
        data = json.loads(raw)
    except UnicodeDecodeError as exc:
        raise Problem(400, "Malformed JSON", "the body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise Problem(
            400,
            "Malformed JSON",
            f"{exc.msg} at line {exc.lineno}, column {exc.colno}",
            [{"field": "(body)", "line": exc.lineno, "column": exc.colno, "message": exc.msg}],
        ) from exc
    return schema.load(data)


def raw_json_body() -> Any:
    """The JSON body without a schema (for bodies that take two shapes)."""
    return json_body(_Passthrough())


class _Passthrough(Schema):
    def load(self, data: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return data


def instant_arg(name: str = "at") -> int | None:
    """An ISO-8601 instant from the query string, or None."""
    text = request.args.get(name)
    if text is None:
        return None
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise Problem(
            400,
            "Invalid query parameter",
            f"{name} is not an ISO-8601 instant with a time zone, such as 2026-11-20T09:15:00Z",
            [{"field": name, "message": "not an ISO-8601 instant with a time zone"}],
        ) from exc


def limit_arg(default: int = 100, maximum: int = 1000) -> int:
    """The page size from the query string."""
    text = request.args.get("limit")
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise Problem(
            400,
            "Invalid query parameter",
            f"limit is a whole number from 1 to {maximum}",
            [{"field": "limit", "message": f"a whole number from 1 to {maximum}"}],
        )
    return int(text)


def encode_cursor(value: Any) -> str | None:
    """An opaque cursor for a page boundary (None: no next page)."""
    if value is None:
        return None
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def cursor_arg(kind: type) -> Any:
    """The page boundary in `cursor`, checked to be of the expected kind; None if absent."""
    text = request.args.get("cursor")
    if text is None:
        return None
    try:
        value = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise _bad_cursor() from exc
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _bad_cursor()
    return value


def _bad_cursor() -> Problem:
    return Problem(
        400,
        "Invalid query parameter",
        "cursor is not one this API gave out; use next_cursor from the previous page",
        [{"field": "cursor", "message": "not a cursor from this API"}],
    )


def dump(schema: Schema, value: Any, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON response through a schema."""
    response = current_app.response_class(
        json.dumps(schema.dump(value)), status=status, mimetype="application/json"
    )
    if headers:
        response.headers.update(headers)
    return response
