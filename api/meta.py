"""Health, the OpenAPI document, and an interactive page that works offline."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, send_from_directory
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import NotFound

from api import schemas as s
from api.openapi import build_spec
from api.web import check_query, dump, operation, services

bp = Blueprint("meta", __name__)

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Segments API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="docs"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>
SwaggerUIBundle({url: "/openapi.json", dom_id: "#docs", deepLinking: true,
                 validatorUrl: null});
</script></body></html>
"""
DOCS_ASSETS = frozenset({"swagger-ui.css", "swagger-ui-bundle.js"})  # what DOCS_PAGE loads


@bp.get("/healthz")
@operation(
    "Liveness, how far the projection is behind the log, whether a backlog is being caught up"
    " and whether catching up fails",
    None,
    response=s.HealthOut,
)
def healthz() -> Response:
    service = services().service
    position, _ = service.projection.checkpoint()
    failing = service.failing
    return dump(
        s.HealthOut(),
        {
            "status": "ok" if failing is None else "failing",
            "log_position": service.log.last_position(),
            "projected_position": position,
            "next_deadline": service.projection.next_deadline(),
            "failing_since": None if failing is None else failing.since,
            "catching_up_since": service.backlog_since,
            "error": None if failing is None else failing.error,
        },
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    check_query({})
    spec = current_app.extensions.get("openapi")
    if spec is None:
        spec = current_app.extensions["openapi"] = build_spec(current_app)
    return jsonify(spec)


@bp.get("/docs")
def docs() -> Response:
    check_query({})
    return Response(DOCS_PAGE, mimetype="text/html")


@bp.get("/docs/<path:filename>")
def docs_assets(filename: str) -> Response:
    # Only what the page loads: the package also holds Swagger's own demo page (index.html,
    # pointed at an Internet URL) and its templates.
    check_query({})
    if filename not in DOCS_ASSETS:
        raise NotFound()
    return send_from_directory(swagger_ui_path, filename)
