"""Projection checkpoints: the last applied position (and the instant time was processed up
to), written in the same transaction as the projection's own changes."""

from __future__ import annotations

import sqlite3

import sqlite_utils


def create_checkpoint_table(db: sqlite_utils.Database) -> None:
    """The checkpoints table, in whichever file a projection lives (idempotent)."""
    db["projection_checkpoints"].create(
        {"name": str, "position": int, "instant": int},
        pk="name",
        not_null={"position", "instant"},
        defaults={"instant": 0},
        if_not_exists=True,
    )


def read_checkpoint(conn: sqlite3.Connection, projection: str) -> tuple[int, int]:
    """(position, instant) a projection last committed, (0, 0) if none."""
    row = conn.execute(
        "SELECT position, instant FROM projection_checkpoints WHERE name = ?", (projection,)
    ).fetchone()
    return (row[0], row[1]) if row else (0, 0)


class SQLiteTransaction:
    """A projection's write transaction: its connection and its checkpoint."""

    def __init__(self, connection: sqlite3.Connection, projection: str) -> None:
        self.connection = connection
        self.projection = projection
        self.position, self.instant = read_checkpoint(connection, projection)

    def advance(self, position: int, instant: int | None = None) -> None:
        """Record `position` (and the instant processed up to) as applied, with the rest."""
        instant = self.instant if instant is None else instant
        self.connection.execute(
            "INSERT INTO projection_checkpoints (name, position, instant) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
            " instant = excluded.instant",
            (self.projection, position, instant),
        )
        self.position, self.instant = position, instant
