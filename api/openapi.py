"""The OpenAPI 3 document, built from the routes' operation metadata and marshmallow schemas."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from api import rule_schema
from api.schemas import MAX_EVIDENCE

PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/ProblemDetailOut"}},
    },
}
ERROR_TEXT = {
    400: "Bad request (malformed JSON, a bad query parameter)",
    401: "No valid API key",
    403: "The key's role may not do this",
    404: "Not found",
    409: "Conflict with the current state",
    412: "The segment changed since the ETag was read",
    413: "Body or batch too large",
    415: "Not JSON, or sent with a Content-Encoding",
    422: "Invalid input; `errors` says what and where",
    428: "If-Match required",
    503: "Another writer kept the database busy: retry after Retry-After. Nothing changed,"
    " unless the problem's title is 'Stored, not applied yet'",
}

# What each query parameter takes, the same on every route that takes it (api/web.py reads
# them); an empty value is refused everywhere.
QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
    "after": {"type": "integer", "minimum": 0, "maximum": 10**18 - 1},
    "at": {"type": "string", "format": "date-time"},
    "archived": {"type": "boolean"},
    "evidence": {"type": "integer", "minimum": 1, "maximum": MAX_EVIDENCE},
}
TEXT = {"type": "string", "minLength": 1}


def build_spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI document of every documented route of the app."""
    from api import schemas

    marshmallow = MarshmallowPlugin()
    spec = APISpec(
        title="Segments",
        version="1",
        openapi_version="3.0.3",
        plugins=[marshmallow],
        info={"description": "Dynamic segmentation over an append-only event log."},
    )
    marshmallow.map_to_openapi_type(schemas.Instant, "string", "date-time")
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    spec.components.schema("ProblemDetailOut", schema=schemas.ProblemDetailOut)
    spec.components.schema("Problem", PROBLEM)
    for name, component in rule_schema.components().items():
        spec.components.schema(name, component)
    paths: dict[str, dict[str, Any]] = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        meta = getattr(view, "operation", None)
        if meta is None:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, meta)
    for path, operations in sorted(paths.items()):
        spec.path(path=path, operations=operations)
    return _ecma_patterns(spec.to_dict())


def _ecma_patterns(node: Any) -> Any:
    """The document with Python's end-of-text anchor (\\Z, which does not match before a
    final newline as $ does in Python) written as ECMA-262's $, which means the same there."""
    if isinstance(node, dict):
        return {
            k: v[:-2] + "$" if k == "pattern" and v.endswith("\\Z") else _ecma_patterns(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_ecma_patterns(v) for v in node]
    return node


def _schema(schemas: Any) -> Any:
    return {"oneOf": list(schemas)} if isinstance(schemas, tuple) else schemas


def _operation(rule: Any, meta: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": meta.summary, "operationId": rule.endpoint}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in rule.arguments
    ]
    parameters += [
        {
            "name": name,
            "in": "query",
            "required": False,
            "description": text,
            "schema": QUERY_SCHEMAS.get(name, TEXT),
        }
        for name, text in meta.query.items()
    ]
    parameters += [
        {"name": name, "in": "header", "required": required, "description": text}
        | {"schema": {"type": "string"}}
        for name, (required, text) in meta.headers.items()
    ]
    if parameters:
        op["parameters"] = parameters
    if meta.body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema(meta.body)}},
        }
    success: dict[str, Any] = {"description": "OK"}
    if meta.response is not None:
        success["content"] = {"application/json": {"schema": _schema(meta.response)}}
    if meta.response_headers:
        success["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in meta.response_headers.items()
        }
    responses: dict[str, Any] = {str(meta.status): success}
    for code, text in meta.also.items():
        responses[str(code)] = {**success, "description": text}
    codes = {400, *meta.errors}  # any route refuses query parameters it does not take
    if meta.body is not None:
        codes |= {413, 415}  # any body may be too large, or not JSON
    if meta.permission is not None:
        op["security"] = [{"bearer": []}]
        codes |= {401, 403, 503}  # any request may wait on the writer's lock (catching up)
    for code in sorted(codes):
        responses[str(code)] = {
            "description": ERROR_TEXT[code],
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
    op["responses"] = responses
    if meta.permission is not None:
        op["description"] = f"Needs a key whose role may `{meta.permission}`."
    return op
