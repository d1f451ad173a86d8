"""What every route shares: the services, JSON bodies, query arguments, cursors, and the
operation metadata from which the OpenAPI document is built."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import Response, current_app, g, request
from marshmallow import Schema, ValidationError

from api.problems import Problem
from api.schemas import (
    NO_SUCH_INSTANT,
    Identifier,
    InstantOutOfRange,
    NoSuchInstant,
    parse_instant,
)
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


Schemas = type[Schema] | tuple[type[Schema], ...]


@dataclass(frozen=True)
class Operation:
    """How a route appears in the OpenAPI document."""

    summary: str
    permission: str | None
    body: Schemas | None = None
    response: Schemas | None = None
    status: int = 200
    query: dict[str, str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    also: dict[int, str] = field(default_factory=dict)  # other successes, same body
    headers: dict[str, tuple[bool, str]] = field(default_factory=dict)  # required?, meaning
    response_headers: dict[str, str] = field(default_factory=dict)


def operation(
    summary: str,
    permission: str | None,
    *,
    body: Schemas | None = None,
    response: Schemas | None = None,
    status: int = 200,
    query: dict[str, str] | None = None,
    errors: tuple[int, ...] = (),
    also: dict[int, str] | None = None,
    headers: dict[str, tuple[bool, str]] | None = None,
    response_headers: dict[str, str] | None = None,
) -> Callable:
    """Declare a route's documentation and the permission it needs (None: public). A body or
    response of several schemas is one of them."""
    meta = Operation(
        summary,
        permission,
        body,
        response,
        status,
        query or {},
        errors,
        also or {},
        headers or {},
        response_headers or {},
    )

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if permission is not None:
                _authorize(permission)
            check_query(meta.query)
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


def check_query(known: dict[str, str]) -> None:
    """Refuse query parameters the route does not take, given more than once or empty: each
    is a mistake (`limt=10`, two `at`s, `contact=`) that would otherwise pass unnoticed."""
    for name in request.args:
        if name not in known:
            takes = f"takes {', '.join(sorted(known))}" if known else "takes no parameters"
            raise bad_query(name, "unknown parameter", f"unknown query parameter {name!r}: {takes}")
        values = request.args.getlist(name)
        if len(values) > 1:
            raise bad_query(name, "given more than once", f"{name} is given {len(values)} times")
        if not values[0]:
            # Not "absent": `contact=` would otherwise ask for the transitions of contact "".
            raise bad_query(name, "empty", f"{name} is empty; leave it out or give a value")


def json_body(schema: Schema) -> Any:
    """The request's JSON body, loaded by a schema (400/415/422 problems otherwise)."""
    if not request.is_json:
        raise Problem(
            415, "Unsupported media type", "send JSON with Content-Type: application/json"
        )
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding != "identity":
        # Read as it came, a compressed body would be refused as malformed, or worse, taken.
        raise Problem(
            415,
            "Unsupported media type",
            f"Content-Encoding {encoding!r} is not supported: send the body uncompressed",
        )
    charset = request.mimetype_params.get("charset", "utf-8").strip().lower()
    if charset not in ("utf-8", "utf8"):
        # JSON is UTF-8 (RFC 8259); a body in another charset would be misread, not refused.
        raise Problem(
            415,
            "Unsupported media type",
            f"charset {charset!r} is not supported: JSON is sent as UTF-8",
        )
    raw = request.get_data(cache=True)
    if raw.startswith(b"\xef\xbb\xbf"):
        why = "the body starts with a byte order mark: send JSON without one (RFC 8259)"
        raise Problem(400, "Malformed JSON", why, [{"field": "(body)", "message": why}])
    try:
        # Strictly: json.loads would take UTF-16 and UTF-32 too, and encoded surrogates.
        repeated: list[tuple[dict, str]] = []
        unheld: list[_Unheld] = []
        data = json.loads(
            raw.decode("utf-8"),
            object_pairs_hook=_noting_repeats(repeated),
            parse_constant=_not_json,
            parse_float=lambda text: _float(text, unheld),
            parse_int=lambda text: _int(text, unheld),
        )
    except UnicodeDecodeError as exc:
        raise Problem(400, "Malformed JSON", "the body is not UTF-8") from exc
    except json.JSONDecodeError as exc:
        raise Problem(
            400,
            "Malformed JSON",
            f"{exc.msg} at line {exc.lineno}, column {exc.colno}",
            [{"field": "(body)", "line": exc.lineno, "column": exc.colno, "message": exc.msg}],
        ) from exc
    except RecursionError as exc:
        raise Problem(400, "Malformed JSON", "the body is nested too deeply") from exc
    except ValueError as exc:  # a number of more digits than Python converts
        raise Problem(400, "Malformed JSON", str(exc)) from exc
    if repeated:
        # Which value a repeated name means is up to each reader: an ambiguous record.
        obj, name = repeated[0]
        where = _path_of(data, obj)
        raise Problem(
            400,
            "Malformed JSON",
            f"the name {name!r} appears more than once in {where or 'the body'}",
            [{"field": where or "(body)", "message": f"{name!r} appears more than once"}],
        )
    if unheld:
        where = next(w for w, _, item in _nodes(data) if isinstance(item, _Unheld))
        number = unheld[0]
        raise Problem(
            422,
            "Invalid input",
            f"{where or 'the body'} is {number[:40]}, {number.why}",
            [{"field": where or "(body)", "message": number.why}],
        )
    # A \ud800-\udfff escape on its own is valid JSON syntax but no text (UTF-8 cannot hold
    # it); looked for only when the body has such an escape at all.
    if _SURROGATE_ESCAPE.search(raw):
        where = _lone_surrogate(data, "")
        if where is not None:
            raise Problem(
                422,
                "Invalid input",
                f"{where or 'the body'} holds a lone UTF-16 surrogate, which is no text",
                [{"field": where or "(body)", "message": "not valid Unicode"}],
            )
    return schema.load(data)


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _not_json(name: str) -> Any:
    """json.loads takes NaN and Infinity, which JSON has not (RFC 8259)."""
    raise ValueError(f"{name} is not a JSON value: numbers in JSON are finite")


class _Unheld(str):
    """A JSON number the service cannot hold as it is written: its text, and why."""

    why = ""


def _float(text: str, unheld: list[_Unheld]) -> Any:
    """A JSON number with a fraction or exponent; one beyond a double (1e400) would be read as
    infinity, one too near zero for it (1e-400) as 0."""
    number = float(text)
    if math.isinf(number):
        why = "a number beyond what a double holds"
    elif number == 0 and any(d in "123456789" for d in text.partition("e")[0].partition("E")[0]):
        why = "a number too near zero for a double (it would be read as 0)"
    else:
        return number
    found = _Unheld(text)
    found.why = why
    unheld.append(found)
    return found


def _int(text: str, unheld: list[_Unheld]) -> Any:
    """A JSON integer; beyond 64 bits SQLite would hold it as a double (rounded), while the
    evaluator of one contact read it exactly, and their answers would differ."""
    # Past 20 digits it is beyond 64 bits anyway; past 4,300, int() refuses to read it at all.
    if len(text.lstrip("-")) <= 20:
        number = int(text)
        if -(2**63) <= number < 2**63:
            return number
    found = _Unheld(text)
    found.why = "an integer beyond 64 bits: send it as text, or as a decimal number"
    unheld.append(found)
    return found


def _noting_repeats(found: list[tuple[dict, str]]) -> Callable[[list], dict]:
    """An object_pairs_hook that builds each object and notes one whose names repeat."""

    def build(pairs: list[tuple[str, Any]]) -> dict:
        obj = dict(pairs)
        if len(obj) < len(pairs):
            counts = Counter(name for name, _ in pairs)
            found.append((obj, next(name for name, n in counts.items() if n > 1)))
        return obj

    return build


def _path_of(data: Any, target: dict) -> str:
    """The path (events.0.properties) of an object inside a JSON value, found by identity."""
    return next((where for where, _, item in _nodes(data) if item is target), "")


def _lone_surrogate(value: Any, path: str) -> str | None:
    """The path (events.0.contact_id) of the first text in a JSON value that UTF-8 cannot
    encode, or None."""
    for where, key, item in _nodes(value, path):
        if isinstance(key, str) and not _encodable(key):
            return where.encode("utf-8", "backslashreplace").decode()  # nameable
        if isinstance(item, str) and not _encodable(item):
            return where
    return None


def _nodes(value: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every value inside a JSON value, first to last: its path, its key and itself."""
    stack: list[tuple[str, Any, Any]] = [(path, None, value)]
    while stack:
        where, key, item = stack.pop()
        yield where, key, item
        if isinstance(item, dict):
            pairs: Any = item.items()
        elif isinstance(item, list):
            pairs = enumerate(item)
        else:
            continue
        inner = [(f"{where}.{k}" if where else str(k), k, v) for k, v in pairs]
        stack += reversed(inner)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def schedule_next(pending: bool = False) -> None:
    """Tell the scheduler about the earliest deadline now that membership moved (`pending`:
    a write is stored but not applied yet, so at once)."""
    found = services()
    if found.scheduler is not None:
        service = found.service
        found.scheduler.wake_at(service.clock() if pending else service.projection.next_deadline())


def refuse_undecodable_path() -> None:
    """Refuse a path that is not UTF-8 once percent-decoded: read with replacement characters,
    /v1/contacts/%FF would name the contact "\ufffd"."""
    environ = request.environ
    sent = environ.get("REQUEST_URI") or environ.get("RAW_URI")  # as the client wrote it
    try:
        if sent is not None:
            unquote_to_bytes(sent.partition("?")[0]).decode("utf-8")
        else:  # WSGI gives the path's bytes as latin-1 text
            environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except UnicodeError as exc:
        why = "the path is not UTF-8 once percent-decoded"
        raise Problem(400, "Bad request", why, [{"field": "(path)", "message": why}]) from exc


def raw_json_body() -> Any:
    """The JSON body without a schema (for bodies that take two shapes)."""
    return json_body(_Passthrough())


class _Passthrough(Schema):
    def load(self, data: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return data


def contact_arg(contact_id: str) -> str:
    """A contact id from the path; a 400 if no contact can have it (ingest refuses it)."""
    try:
        return Identifier(in_urls=True).deserialize(contact_id)
    except ValidationError as exc:
        why = "; ".join(exc.messages)  # type: ignore[arg-type]
        raise Problem(
            400,
            "Bad request",
            f"no contact has this id: {why}",
            [{"field": "contact_id", "message": why}],
        ) from exc


def instant_arg(name: str = "at") -> int | None:
    """An ISO-8601 instant from the query string, or None."""
    text = request.args.get(name)
    if text is None:
        return None
    try:
        return parse_instant(text)
    except InstantOutOfRange as exc:
        message = "outside the years 0001-9999 in UTC"
        raise bad_query(name, message, f"{name} lies {message}") from exc
    except NoSuchInstant as exc:
        message = NO_SUCH_INSTANT
        raise bad_query(name, message, f"{name} names {message}") from exc
    except ValueError as exc:
        message = "not an ISO-8601 instant with a time zone"
        example = "such as 2026-11-20T09:15:00Z"
        raise bad_query(name, message, f"{name} is {message}, {example}") from exc


def bad_query(name: str, message: str, detail: str) -> Problem:
    """A 400 problem about one query parameter: `message` for the field, `detail` overall."""
    return Problem(400, "Invalid query parameter", detail, [{"field": name, "message": message}])


def limit_arg(default: int = 100, maximum: int = 1000, name: str = "limit") -> int:
    """A count from the query string (by default the page size), 1 to `maximum`."""
    text = request.args.get(name)
    if text is None:
        return default
    number = whole_number(text)
    if number is None or not 1 <= number <= maximum:
        message = f"a whole number from 1 to {maximum}"
        raise bad_query(name, message, f"{name} is {message}")
    return number


def flag_arg(name: str) -> bool:
    """A yes/no query parameter (true/false, 1/0, yes/no); absent: no."""
    text = request.args.get(name, "false").lower()
    if text not in _FLAGS:
        raise bad_query(name, "true or false", f"{name} is true or false, not {text!r}")
    return _FLAGS[text]


_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def whole_number(text: str) -> int | None:
    """A whole number written in at most 18 ASCII digits (so that SQLite's integers hold it),
    or None."""
    return int(text) if _WHOLE_NUMBER.fullmatch(text) else None


_WHOLE_NUMBER = re.compile(r"[0-9]{1,18}")


def encode_cursor(value: Any) -> str | None:
    """An opaque cursor for a page boundary of the list this request reads (None: no next
    page). It names the list (its path): one list's cursor would page another wrongly."""
    if value is None:
        return None
    text = json.dumps([request.path, value])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def cursor_arg(kind: type) -> Any:
    """The page boundary in `cursor`, checked to be one of this list's, of the expected kind;
    None if absent."""
    text = request.args.get("cursor")
    if text is None:
        return None
    try:
        found = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise _bad_cursor() from exc
    if not isinstance(found, list) or len(found) != 2 or found[0] != request.path:
        raise _bad_cursor()
    value = found[1]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _bad_cursor()
    # Only what the API hands out: positions SQLite's integers hold, text that is text.
    if isinstance(value, int) and not 0 <= value < 1 << 63:
        raise _bad_cursor()
    if isinstance(value, str) and not _encodable(value):
        raise _bad_cursor()
    return value


def _bad_cursor() -> Problem:
    return bad_query(
        "cursor",
        "not a cursor from this API",
        "cursor is not one this list gave out; use next_cursor from its previous page",
    )


def dump(schema: Schema, value: Any, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON response through a schema."""
    response = current_app.response_class(
        # allow_nan=False: JSON has no NaN nor Infinity; better a 500 than a body no client reads.
        json.dumps(schema.dump(value), allow_nan=False),
        status=status,
        mimetype="application/json",
    )
    if headers:
        response.headers.update(headers)
    return response
