"""Commands: `flask --app wsgi keys create|list|revoke` and `flask --app wsgi replay [--verify]`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext

from api.web import Services
from engine.replay import replay, verify
from eventstore.sqlite_keys import ROLES
from eventstore.sqlite_projection import SQLiteProjectionStore

keys = AppGroup("keys", help="Create, list and revoke API keys.")


def _services() -> Services:
    """The app's services; a note first if the database was created to run this command (a
    mistyped SEGMENTS_DB, or the command run from another directory)."""
    if current_app.extensions.pop("segments_db_created", False):
        where = current_app.config["SEGMENTS_DB"]
        click.echo(f"Note: there was no database at {where} (SEGMENTS_DB): created one.", err=True)
    return current_app.extensions["segments"]


@keys.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the key may do.")
@click.option("--name", default="", help="Who or what the key is for.")
def create_key(role: str, name: str) -> None:
    """Create a key; the key itself is the last line printed (it is shown only once)."""
    found = _services()
    record, key = found.keys.create(role, name, found.service.clock())
    click.echo(f"Created {role} key {record.key_id}. Keep it safe; it is not shown again:")
    click.echo(key)


@keys.command("list")
def list_keys() -> None:
    """List keys (ids, roles, names; never the keys)."""
    for record in _services().keys.all():
        state = "revoked" if record.revoked_at else "active"
        click.echo(f"{record.key_id}  {record.role:<9} {state:<8} {record.name}")


@keys.command("revoke")
@click.argument("key_id")
def revoke_key(key_id: str) -> None:
    """Revoke a key by its id."""
    found = _services()
    if not found.keys.revoke(key_id, found.service.clock()):
        raise click.ClickException(f"there is no active key {key_id}")
    click.echo(f"Revoked {key_id}.")


@click.command("replay")
@with_appcontext
@click.option(
    "--verify",
    "check",
    is_flag=True,
    help="Replay into a scratch database and report differences from the live projection.",
)
def replay_command(check: bool) -> None:
    """Rebuild membership, transitions and deadlines from the log (or check them)."""
    service = _services().service
    total = service.log.last_position()
    with click.progressbar(length=total, label="Replaying", show_pos=True) as bar:
        done = [0]

        def progress(position: int) -> None:
            bar.update(position - done[0])
            done[0] = position

        if check:
            with tempfile.TemporaryDirectory() as scratch_dir:
                scratch = SQLiteProjectionStore(Path(scratch_dir) / "replay.db")
                report = verify(service.log, service.projection, scratch, progress)
                scratch.close()
        else:
            replay(service.log, service.projection, service.clock(), progress, "timeline")
            click.echo(f"\nReplayed {total} events.")
            return
    click.echo(
        f"\nCompared {report.transitions} transitions and {report.members} memberships"
        f" up to position {report.position}."
    )
    if not report.ok:
        for line in report.differences:
            click.echo(line)
        raise click.ClickException("the live projection differs from a replay of the log")
    click.echo("The live projection equals a replay of the log.")


def register(app: Flask) -> None:
    """Add the commands to the app's CLI."""
    app.cli.add_command(keys)
    app.cli.add_command(replay_command)
