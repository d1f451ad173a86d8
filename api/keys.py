"""Admins manage API keys (the CLI does the same: `flask --app wsgi keys ...`)."""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response

from api import schemas as s
from api.problems import Problem
from api.web import dump, json_body, operation, services

bp = Blueprint("keys", __name__)


@bp.get("/v1/keys")
@operation("Every API key (never the keys themselves)", "keys", response=s.KeysOut)
def list_keys() -> Response:
    return dump(s.KeysOut(), {"keys": [asdict(k) for k in services().keys.all()]})


@bp.post("/v1/keys")
@operation(
    "Create a key for a role; the key is in this response only",
    "keys",
    body=s.KeyIn,
    response=s.KeyOut,
    status=201,
    errors=(422,),
)
def create_key() -> Response:
    body = json_body(s.KeyIn())
    record, key = services().keys.create(body["role"], body["name"], services().service.clock())
    return dump(s.KeyOut(), {**asdict(record), "key": key}, 201)


@bp.delete("/v1/keys/<key_id>")
@operation("Revoke a key", "keys", response=s.KeyOut, errors=(404,))
def revoke_key(key_id: str) -> Response:
    keys = services().keys
    if not keys.revoke(key_id, services().service.clock()):
        raise Problem(404, "Not found", f'there is no active key "{key_id}"')
    record = next(k for k in keys.all() if k.key_id == key_id)
    return dump(s.KeyOut(), asdict(record))
