"""The command line: keys, replay and its verification."""

from __future__ import annotations


def test_keys_create_prints_the_key_last_and_it_works(app, client):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["keys", "create", "--role", "auditor", "--name", "audit team"])
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("sk_")
    assert client.get("/v1/segments", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    listed = runner.invoke(args=["keys", "list"]).output
    assert "auditor" in listed and "audit team" in listed and key not in listed
    key_id = key.split("_")[1]
    assert runner.invoke(args=["keys", "revoke", key_id]).exit_code == 0
    assert client.get("/v1/segments", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    assert runner.invoke(args=["keys", "revoke", key_id]).exit_code != 0


def test_keys_create_refuses_an_unknown_role(app):
    result = app.test_cli_runner().invoke(args=["keys", "create", "--role", "boss"])
    assert result.exit_code != 0
    assert "boss" in result.output


def test_replay_and_verify(app, api, clock):
    api("marketer").post("/v1/segments", json={"name": "Buyers", "rule": "purchased within 1 day"})
    api("producer").post("/v1/events", json={"contact_id": "c", "type": "purchased"})
    clock.advance(2 * 86_400_000)
    runner = app.test_cli_runner()
    assert "equals a replay" in runner.invoke(args=["replay", "--verify"]).output
    with app.extensions["segments"].service.projection.session() as session:
        session.conn.execute("DELETE FROM transitions")  # lost: only a replay brings it back
    assert "equals a replay" not in runner.invoke(args=["replay", "--verify"]).output
    result = runner.invoke(args=["replay"])
    assert result.exit_code == 0
    assert "Replayed 2 events" in result.output
    transitions = api("auditor").get("/v1/segments/buyers/transitions").json["transitions"]
    assert [t["kind"] for t in transitions] == ["entered", "exited"]
