"""Errors as application/problem+json (RFC 9457), mapped from every error in one place."""

from __future__ import annotations

import json
import logging
from typing import Any

from flask import Flask, Response, request
from marshmallow import ValidationError
from werkzeug import exceptions as http
from werkzeug.exceptions import HTTPException

from engine.errors import (
    Conflict,
    EngineError,
    InvalidInput,
    InvalidRule,
    NotFound,
    NotYetApplied,
    VersionMismatch,
)
from eventstore.interface import ConcurrencyError, StoreBusy

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


class Problem(Exception):
    """An HTTP problem to report: status, a short title, a detail, and field-level errors."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra


def problem_response(problem: Problem) -> Response:
    """The problem+json response of a Problem."""
    body: dict[str, Any] = {"type": "about:blank", "title": problem.title, "status": problem.status}
    if problem.detail:
        body["detail"] = problem.detail
    if problem.errors:
        body["errors"] = problem.errors
    body.update(problem.extra)
    response = Response(json.dumps(body), status=problem.status, mimetype=PROBLEM_JSON)
    response.headers.update(problem.headers)
    return response


def field_errors(messages: Any, prefix: str = "") -> list[dict[str, Any]]:
    """marshmallow's nested messages as a flat list of {"field", "message"}."""
    found: list[dict[str, Any]] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                name = prefix or "(body)"
            found.extend(field_errors(value, name))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        found.extend({"field": prefix or "(body)", "message": m} for m in messages)
    elif isinstance(messages, list):
        for item in messages:
            found.extend(field_errors(item, prefix))
    else:
        found.append({"field": prefix or "(body)", "message": str(messages)})
    return found


def engine_problem(exc: EngineError) -> Problem:
    """The problem that reports an engine error."""
    if isinstance(exc, InvalidRule):
        errors = [
            {
                "field": "rule",
                "line": p.line,
                "column": p.column,
                "message": p.message,
                "expected": list(getattr(p, "expected", ()) or ()),
                "hint": getattr(p, "hint", None),
            }
            for p in exc.problems
        ]
        return Problem(422, "The rule is not valid", exc.message, errors)
    if isinstance(exc, NotFound):
        return Problem(404, "Not found", exc.message)
    if isinstance(exc, VersionMismatch):
        return Problem(
            412,
            "The segment has changed",
            exc.message + "; read it again and retry with its current ETag",
            current_version=exc.actual,
        )
    if isinstance(exc, NotYetApplied):
        if not exc.busy:
            return Problem(
                500,
                "Stored, not applied yet",
                "the change was stored, but applying it to membership failed (an internal error,"
                " logged); do not send it again",
            )
        return Problem(
            503,
            "Stored, not applied yet",
            f"{exc.message}: the change was stored, and membership will be brought up to date"
            " within a second or two; do not send it again, read the segment after Retry-After",
            headers={"Retry-After": "1"},
        )
    if isinstance(exc, Conflict):
        errors = [{"field": exc.field, "message": exc.message}] if exc.field else None
        return Problem(409, "Conflict", exc.message, errors)
    if isinstance(exc, InvalidInput):
        field = exc.field or "(body)"
        return Problem(
            422, "Invalid input", exc.message, [{"field": field, "message": exc.message}]
        )
    return Problem(400, "Bad request", exc.message)


def _routed(app: Flask, path: str) -> bool:
    """Whether a path names an endpoint, by any method."""
    try:
        app.url_map.bind("localhost").match(path, method=request.method)
    except http.MethodNotAllowed:
        return True
    except HTTPException:
        return False
    return True


def register(app: Flask) -> None:
    """Map every error to a problem+json response."""

    @app.errorhandler(Problem)
    def _problem(exc: Problem) -> Response:
        return problem_response(exc)

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        return problem_response(
            Problem(
                422,
                "Invalid input",
                "the request body does not have the expected shape",
                field_errors(exc.messages),
            )
        )

    @app.errorhandler(EngineError)
    def _engine(exc: EngineError) -> Response:
        return problem_response(engine_problem(exc))

    @app.errorhandler(StoreBusy)
    def _busy(exc: StoreBusy) -> Response:
        return problem_response(
            Problem(
                503,
                "Busy",
                f"{exc}; nothing was stored or changed, retry shortly",
                headers={"Retry-After": "1"},
            )
        )

    @app.errorhandler(ConcurrencyError)
    def _concurrency(exc: ConcurrencyError) -> Response:
        return problem_response(Problem(409, "Conflict", str(exc)))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        detail = exc.description
        if exc.code == 413:
            limit = app.config.get("MAX_CONTENT_LENGTH")
            detail = f"the request body is larger than {limit} bytes"
        elif isinstance(exc, http.NotFound):  # no route (a resource not found: EngineError)
            detail = f"there is no endpoint {request.path} (see /openapi.json)"
            bare = request.path.rstrip("/")
            if bare != request.path and _routed(app, bare):
                detail += f"; without the trailing slash, {bare}"
        elif isinstance(exc, http.MethodNotAllowed):
            allowed = ", ".join(sorted(set(exc.valid_methods or ()) - {"OPTIONS"}))
            detail = f"{request.method} is not allowed on {request.path}; it takes {allowed}"
        return problem_response(
            Problem(
                exc.code or 500,
                exc.name[:1] + exc.name[1:].lower(),  # "Not found", as the service's own titles
                detail,
                headers={k: v for k, v in exc.get_headers() if k.lower() != "content-type"},
            )
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error")
        return problem_response(Problem(500, "Internal server error", "an unexpected error"))
