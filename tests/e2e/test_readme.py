"""The README's walkthrough, run as written against the real service, so that it stays true.

Only what a test must change is changed: the port, the database, the Python that runs flask,
and the window (3 seconds instead of 30, so that the test does not wait half a minute).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from api.schemas import format_instant, parse_instant
from tests.e2e.server import ROOT, Server, environment

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl"),
]

# Each curl call's status and body go to numbered files, in the order the walkthrough runs them.
RECORDING_CURL = """
n=0
curl() {
    command curl -sS -o "$OUT/$n.body" -w '%{http_code}' "$@" > "$OUT/$n.status"
    n=$((n + 1))
}
"""

KEEP_KEY = '\nprintf %s "$ADMIN" > "$OUT/admin-key"\n'


def walkthrough() -> str:
    """The shell block that follows the walkthrough's heading."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Walkthrough", 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def adapted(script: str, port: int) -> str:
    replacements = {
        "localhost:8000": f"localhost:{port}",
        ".venv/bin/flask": f'"{sys.executable}" -m flask',
        "within 30 seconds": "within 3 seconds",
        "sleep 31": "sleep 4",
    }
    for old, new in replacements.items():
        assert old in script, f"the walkthrough no longer has {old!r}: update this test"
        script = script.replace(old, new)
    return script


def test_the_readme_walkthrough_works_as_written(tmp_path):
    db = tmp_path / "segments.db"
    out = tmp_path / "out"
    out.mkdir()
    server = Server(db).start()
    try:
        done = subprocess.run(
            [
                "bash",
                "-euo",
                "pipefail",
                "-c",
                RECORDING_CURL + adapted(walkthrough(), server.port) + KEEP_KEY,
            ],
            cwd=ROOT,
            env={**environment(db), "OUT": str(out)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        calls = sorted(out.glob("*.status"), key=lambda p: int(p.stem))
        statuses = [int(p.read_text()) for p in calls]
        bodies = [json.loads((out / f"{p.stem}.body").read_text()) for p in calls]
        assert statuses == [201, 200, 422, 201, 201, 200, 200, 200, 200, 200, 200, 200]
        key = (out / "admin-key").read_text()
        # The walkthrough asks why at an instant the reader copies from the output; here,
        # one second after the event.
        recorded = parse_instant(bodies[4]["recorded_at"])
        at = format_instant(recorded + 1_000)
        status, why, _ = server.call("GET", f"/v1/segments/engaged/explain/c-1042?at={at}", key=key)
        assert status == 200 and why["member"] is True
        status, then, _ = server.call("GET", f"/v1/segments/engaged/members?at={at}", key=key)
        assert [m["contact_id"] for m in then["members"]] == ["c-1042"]
    finally:
        server.stop()

    assert bodies[0]["role"] == "producer"
    assert bodies[1]["rule"] == "opened email within 30 seconds"
    assert [e["hint"] for e in bodies[2]["errors"] if e["hint"]] == ['did you mean "within"?']
    assert bodies[3]["id"] == "engaged"
    assert [s["id"] for s in bodies[5]["segments"]] == ["engaged"]
    assert [m["contact_id"] for m in bodies[6]["members"]] == ["c-1042"]
    assert bodies[7]["segments"] == []
    transitions = bodies[8]["transitions"]
    assert [(t["kind"], t["cause"]["kind"]) for t in transitions] == [
        ("entered", "event"),
        ("exited", "time"),
    ]
    assert [parse_instant(t["at"]) for t in transitions] == [recorded, recorded + 3_000]
    # At the README's fixed instant the contact did not exist yet: a clear no, not an error.
    assert bodies[9]["member"] is False and bodies[9]["explanation"]["children"]
    assert bodies[10]["members"] == []
    assert bodies[11]["count"] == 1
