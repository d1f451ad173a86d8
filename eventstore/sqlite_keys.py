"""API keys in SQLite: only a hash of each key is kept; a key is shown once, when created."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

from eventstore.connections import Connections

ROLES = ("admin", "marketer", "producer", "auditor")
PREFIX = "sk_"


@dataclass(frozen=True)
class ApiKey:
    """A key's record: never the key itself."""

    key_id: str
    role: str
    name: str
    created_at: int
    revoked_at: int | None = None


def _digest(key: str) -> str:
    # Keys are 256 random bits, so a plain SHA-256 resists guessing; no slow hash needed.
    return hashlib.sha256(key.encode()).hexdigest()


class SQLiteKeyStore:
    """Creates, checks and revokes API keys."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = 30_000) -> None:
        self._connections = Connections(path, busy_timeout_ms=busy_timeout_ms)
        with self._connections.write() as conn:
            db = sqlite_utils.Database(conn)
            db["api_keys"].create(
                {
                    "key_id": str,
                    "digest": str,
                    "role": str,
                    "name": str,
                    "created_at": int,
                    "revoked_at": int,
                },
                pk="key_id",
                not_null={"digest", "role", "name", "created_at"},
                if_not_exists=True,
            )
            db["api_keys"].create_index(["digest"], unique=True, if_not_exists=True)

    def create(self, role: str, name: str, now: int) -> tuple[ApiKey, str]:
        """A new key for a role: its record, and the key (returned only this once)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        key_id = secrets.token_hex(6)
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(key_id, role, name, now)
        with self._connections.write() as conn:
            conn.execute(
                "INSERT INTO api_keys (key_id, digest, role, name, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (key_id, _digest(key), role, name, now),
            )
        return record, key

    def verify(self, key: str) -> ApiKey | None:
        """The record of a valid, unrevoked key; None otherwise."""
        row = (
            self._connections.get()
            .execute(
                "SELECT key_id, role, name, created_at, revoked_at FROM api_keys"
                " WHERE digest = ? AND revoked_at IS NULL",
                (_digest(key),),
            )
            .fetchone()
        )
        return ApiKey(*row) if row else None

    def revoke(self, key_id: str, now: int) -> bool:
        """Revoke a key; False if there is no such unrevoked key."""
        with self._connections.write() as conn:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                (now, key_id),
            )
        return cur.rowcount == 1

    def all(self) -> list[ApiKey]:
        """Every key record, revoked ones included."""
        rows = self._connections.get().execute(
            "SELECT key_id, role, name, created_at, revoked_at FROM api_keys ORDER BY created_at"
        )
        return [ApiKey(*row) for row in rows]

    def close(self) -> None:
        """Release connections."""
        self._connections.close()
