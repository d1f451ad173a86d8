"""The SQLite log's bulk reads for set-wise evaluation and the timeline replay, on real files."""

from __future__ import annotations

from eventstore.interface import NewEvent
from eventstore.sqlite import SQLiteEventStore
from tests.clock import Clock

T = 1_767_225_600_000


def _texts(chunks) -> list[tuple[int, dict[str, str]]]:
    found = []
    for chunk in chunks:
        for i, position in enumerate(chunk.position.tolist()):
            found.append((position, {f: texts[i] for f, texts in chunk.texts.items()}))
    return sorted(found, key=lambda row: row[0])


def test_field_texts_come_once_each_whatever_the_chunks(tmp_path):
    """Each event once, whatever the chunk size; other types, other streams and positions
    beyond the one asked for left out; a missing field reads as an empty text."""
    log = SQLiteEventStore(tmp_path / "log.db", Clock(T + 100))
    occurred = [T + 10, T + 20, T + 20, T + 20, T + 30, T + 40, T + 20]
    log.append(
        [
            NewEvent(f"p{i}", f"contact:c{i % 3}", "purchased", {"amount": i * 1.5}, at)
            for i, at in enumerate(occurred)
        ]
        + [
            NewEvent("v", "contact:c1", "page_viewed", {"url": "/x"}, T + 20),
            NewEvent("s", "segment:s", "purchased", {"amount": 99}, T + 20),
            NewEvent("late", "contact:c1", "purchased", {"other": 1}, T + 20),
        ]
    )
    queries = log.population()
    expected = [(i + 1, {"amount": repr(i * 1.5)}) for i in range(len(occurred))]
    for chunk in (1, 2, 3, 100):
        assert _texts(queries.field_texts(["purchased"], ["amount"], 9, chunk)) == expected
    # With the later position, a purchase without the field: an empty text.
    assert _texts(queries.field_texts(["purchased"], ["amount"], 10, 2))[-1] == (
        10,
        {"amount": ""},
    )
    assert _texts(queries.field_texts(["page_viewed", "purchased"], ["url"], 8, 2)) == [
        *((i + 1, {"url": ""}) for i in range(len(occurred))),
        (8, {"url": '"/x"'}),
    ]
    assert list(queries.field_texts(["signed_up"], ["amount"], 10, 2)) == []
    # Every type: by position, contacts' streams only.
    every = _texts(queries.field_texts(None, ["amount"], 10, 3))
    assert [position for position, _ in every] == [1, 2, 3, 4, 5, 6, 7, 8, 10]


def test_bulk_reads_give_the_connection_its_page_cache_back(tmp_path):
    """Scans of the log read with a small page cache (a full one would stay behind through a
    rebuild) and set the connection's own size back: appends and evaluations use it."""
    log = SQLiteEventStore(tmp_path / "log.db", Clock(T + 100))
    log.append([NewEvent(f"e{i}", f"contact:c{i}", "purchased", {"amount": i}) for i in range(5)])
    queries = log.population()
    own = log.connection().execute("PRAGMA cache_size").fetchone()[0]
    assert own == -65536
    assert queries.stream_positions("contact:", 5).counts.tolist() == [1] * 5
    assert [c.type for c in queries.type_columns(5)] == ["purchased"]
    assert queries.recorded_runs(5, 2)[0].tolist() == [1]
    assert len(_texts(queries.field_texts(["purchased"], ["amount"], 5, 2))) == 5
    assert log.connection().execute("PRAGMA cache_size").fetchone()[0] == own
