"""What an operator meets starting and stopping the service and running its commands: a
one-line error for a bad setting, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.e2e.server import ROOT, Server, environment


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"SEGMENTS_DURABILITY": "full"}, 'SEGMENTS_DURABILITY is "process" or "power"'),
        ({"SEGMENTS_DB": "{tmp}"}, "cannot open the database"),  # a directory
        ({"SEGMENTS_DB": "{tmp}/not-a-database.db"}, "file is not a database"),
        ({"SEGMENTS_DB": ""}, "SEGMENTS_DB is empty"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [["-m", "flask", "--app", "wsgi", "keys", "list"], ["-m", "api.serve", "--port", "9"]],
    ids=["cli", "serve"],
)
def test_a_bad_setting_is_one_line_that_names_it(tmp_path, setting, message, command):
    (tmp_path / "not-a-database.db").write_text("hello")
    env = environment(tmp_path / "s.db")
    env.update({k: v.format(tmp=tmp_path) for k, v in setting.items()})
    done = run(command, env)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_a_command_says_when_it_created_the_database(tmp_path):
    env = environment(tmp_path / "typo" / "s.db")
    first = run(["-m", "flask", "--app", "wsgi", "keys", "list"], env)
    assert first.returncode == 0
    assert "there was no database at" in first.stderr
    again = run(["-m", "flask", "--app", "wsgi", "keys", "list"], env)
    assert "there was no database" not in again.stderr


def test_a_second_service_on_the_port_says_so_and_the_first_stops_on_sigterm(tmp_path):
    first = Server(tmp_path / "s.db").start()
    try:
        second = run(["-m", "api.serve", "--port", str(first.port)], environment(first.db))
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{first.port}" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.call("GET", "/healthz")[0] == 200
    finally:
        log = first.stop()  # SIGTERM
    assert first.process is not None and first.process.returncode == 0
    assert log.rstrip().endswith("segments: stopped")


def test_a_body_larger_than_the_service_takes_is_refused_before_it_is_read(tmp_path):
    server = Server(tmp_path / "s.db").start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
            conn.sendall(
                b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 200000000\r\n\r\n"  # and no body, no key: nothing is waited for
            )
            assert conn.recv(100).startswith(b"HTTP/1.1 413")
    finally:
        server.stop()
