"""The function log store: buffered appends, streamed reads, seeking, crash tolerance, retention."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from lamina.observability import logstore
from lamina.observability.logstore import (
    DAY_MS,
    FileLogSink,
    escape,
    finder_for,
    list_segments,
    unescape,
)

G = "/aws/lambda/hello"
S = "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef"
R = "us-east-1"
T0 = 1_700_000_000_000


def messages(store: FileLogSink, **kwargs: object) -> list[str]:
    return [e.message for e in store.read_forward(R, G, S, **kwargs)]  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> FileLogSink:
    return FileLogSink(tmp_path / "logs", now=lambda: T0 / 1000)


def test_write_buffers_until_flush(store: FileLogSink) -> None:
    store.write(G, S, [(T0, "hello"), (T0 + 1, "world")])
    assert store.groups(R) == []  # nothing on disk before the flush
    store.flush()
    assert store.groups(R) == [G]
    assert store.streams(R, G) == [S]
    assert messages(store) == ["hello", "world"]


def test_text_round_trips_newlines_tabs_and_backslashes(store: FileLogSink) -> None:
    texts = ["a\nb", "tab\there", "back\\slash", "literal \\n stays", "", "é ✓"]
    store.write(G, S, [(T0, t) for t in texts])
    store.flush()
    assert messages(store) == texts
    assert all(unescape(escape(t)) == t for t in texts)


def test_timestamps_never_go_backwards(store: FileLogSink) -> None:
    store.write(G, S, [(T0 + 10, "late"), (T0, "clock stepped back")])
    store.flush()
    assert [e.timestamp for e in store.read_forward(R, G, S)] == [T0 + 10, T0 + 10]


def test_region_and_long_names(store: FileLogSink) -> None:
    group = "/custom/" + "x" * 500
    stream = "s" * 512
    store.write(group, stream, [(T0, "one")], region="eu-west-1")
    store.flush()
    assert store.groups("eu-west-1") == [group]
    assert store.groups(R) == []
    assert store.streams("eu-west-1", group) == [stream]
    assert [e.message for e in store.read_forward("eu-west-1", group, stream)] == ["one"]


def test_reads_stream_in_blocks_and_seek_by_time(
    store: FileLogSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logstore, "CHUNK", 4096)
    monkeypatch.setattr(logstore, "INDEX_EVERY", 2048)
    for batch in range(20):
        store.write(G, S, [(T0 + batch * 1000 + i, f"event {batch}-{i}") for i in range(500)])
        store.flush()
    events = list(store.read_forward(R, G, S))
    assert len(events) == 10_000
    segment = list_segments(store._stream_dir(R, G, S))[0]
    assert len(segment.index()) > 50  # a sparse index was written as the data grew
    window = list(store.read_forward(R, G, S, start_ms=T0 + 5000, end_ms=T0 + 5499))
    assert [e.message for e in window] == [f"event 5-{i}" for i in range(500)]
    newest = list(store.read_backward(R, G, S, start_ms=T0 + 19_000))
    assert [e.message for e in newest] == [f"event 19-{i}" for i in reversed(range(500))]
    backward = [e.message for e in store.read_backward(R, G, S)]
    assert backward == [e.message for e in reversed(events)]


def test_positions_resume_forward_and_backward(store: FileLogSink) -> None:
    store.write(G, S, [(T0 + i, f"e{i}") for i in range(10)])
    store.flush()
    events = list(store.read_forward(R, G, S))
    after = [e.message for e in store.read_forward(R, G, S, at=events[3].next_position)]
    assert after == [f"e{i}" for i in range(4, 10)]
    before = [e.message for e in store.read_backward(R, G, S, before=events[3].position)]
    assert before == ["e2", "e1", "e0"]


def test_finder_yields_only_candidate_records(store: FileLogSink) -> None:
    store.write(G, S, [(T0 + i, f"line {i} {'ERROR' if i % 7 == 0 else 'ok'}") for i in range(100)])
    store.write(G, S, [(T0 + 100, "multi\nline ERROR")])
    store.flush()
    found = [e.message for e in store.read_forward(R, G, S, finder=finder_for(("ERROR",)))]
    assert found == [f"line {i} ERROR" for i in range(0, 100, 7)] + ["multi\nline ERROR"]
    either = finder_for(("line 3 ", "line 5 "))
    assert [e.message for e in store.read_forward(R, G, S, finder=either)] == [
        "line 3 ok",
        "line 5 ok",
    ]


def test_segments_rotate_by_size(store: FileLogSink, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logstore, "SEGMENT_BYTES", 1000)
    for i in range(30):
        store.write(G, S, [(T0 + i, "x" * 80)])
        store.flush()
    segments = list_segments(store._stream_dir(R, G, S))
    assert len(segments) > 2
    assert len(list(store.read_forward(R, G, S))) == 30
    tail = list(store.read_forward(R, G, S, start_ms=T0 + 25))
    assert [e.timestamp for e in tail] == [T0 + i for i in range(25, 30)]


def test_torn_last_record_is_ignored_and_never_appended_to(tmp_path: Path) -> None:
    first = FileLogSink(tmp_path / "logs")
    first.write(G, S, [(T0, "complete"), (T0 + 1, "also complete")])
    first.flush()
    [segment] = list_segments(first._stream_dir(R, G, S))
    with segment.path.open("ab") as handle:  # a crash in the middle of an append
        handle.write(b"1700000000002\tto")
    with segment.index_path.open("ab") as handle:
        handle.write(b"\x01\x02\x03")  # a torn index entry
    assert messages(first) == ["complete", "also complete"]
    assert [e.message for e in first.read_backward(R, G, S)] == ["also complete", "complete"]
    restarted = FileLogSink(tmp_path / "logs")  # a new process after the crash
    restarted.write(G, S, [(T0 + 3, "after restart")])
    restarted.flush()
    assert messages(restarted) == ["complete", "also complete", "after restart"]
    assert len(list_segments(restarted._stream_dir(R, G, S))) == 2


def test_reopened_stream_appends_to_its_segment(tmp_path: Path) -> None:
    first = FileLogSink(tmp_path / "logs")
    first.write(G, S, [(T0, "one")])
    asyncio.run(first.close())
    second = FileLogSink(tmp_path / "logs")
    second.write(G, S, [(T0 + 1, "two")])
    second.flush()
    assert messages(second) == ["one", "two"]
    assert len(list_segments(second._stream_dir(R, G, S))) == 1


def test_retention_deletes_whole_expired_segments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [T0 / 1000]
    store = FileLogSink(tmp_path / "logs", now=lambda: now[0])
    old = T0 - 3 * DAY_MS
    store.write(G, S, [(old, "three days old")])
    store.flush()
    monkeypatch.setattr(logstore, "SEGMENT_SPAN_MS", 1000)  # the next write starts a segment
    store.write(G, S, [(T0, "fresh")])
    store.flush()
    other = "2024/01/01/[$LATEST]ffff"
    store.write(G, other, [(old, "only old")])
    store.flush()
    assert len(list_segments(store._stream_dir(R, G, S))) == 2
    assert store.set_retention(R, G, 1)
    assert messages(store) == ["fresh"]
    assert len(list_segments(store._stream_dir(R, G, S))) == 1
    assert store.streams(R, G) == [S]  # a stream whose events all expired is gone
    info = store.group_info(R, G)
    assert info is not None
    assert info.retention_days == 1
    reloaded = FileLogSink(tmp_path / "logs")  # the policy is durable
    reloaded_info = reloaded.group_info(R, G)
    assert reloaded_info is not None
    assert reloaded_info.retention_days == 1


def test_delete_stream_and_group(store: FileLogSink) -> None:
    store.write(G, S, [(T0, "a")])
    store.write(G, "other", [(T0, "b")])
    store.flush()
    assert store.delete_stream(R, G, S)
    assert not store.delete_stream(R, G, S)
    assert store.streams(R, G) == ["other"]
    assert store.delete_group(R, G)
    assert store.groups(R) == []
    assert not store.delete_group(R, G)
    store.write(G, S, [(T0, "recreated on the next write")])
    store.flush()
    assert messages(store) == ["recreated on the next write"]


def test_stream_info(store: FileLogSink) -> None:
    store.write(G, S, [(T0, "first"), (T0 + 5, "last")])
    store.flush()
    info = store.stream_info(R, G, S)
    assert info is not None
    assert (info.first_event_ms, info.last_event_ms) == (T0, T0 + 5)
    assert info.stored_bytes == os.path.getsize(list_segments(store._stream_dir(R, G, S))[0].path)
    assert store.stream_info(R, G, "missing") is None


def test_background_flush(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        store = FileLogSink(tmp_path / "logs", interval_s=0.01)
        store.start()
        store.write(G, S, [(T0, "flushed by the timer")])
        for _ in range(200):
            await asyncio.sleep(0.01)
            if store.streams(R, G):
                break
        found = messages(store)
        await store.close()
        return found

    assert asyncio.run(scenario()) == ["flushed by the timer"]


@pytest.mark.parametrize("filler", ["plain text without the letters", "DDDDDLLLLLNNNNEEEE" * 4])
def test_literal_finder_is_exact_whether_its_anchor_byte_is_rare_or_not(filler: str) -> None:
    finder = finder_for(("NEEDLE",))
    assert finder is not None
    lines = [f"{i} {filler} {'NEEDLE' if i % 97 == 0 else 'NEEDL'}" for i in range(5000)]
    data = "\n".join(lines).encode()
    hits, start = [], 0
    while (hit := finder(data, start, len(data))) >= 0:
        hits.append(data[hit : hit + 6])
        start = hit + 1
    assert len(hits) == len(range(0, 5000, 97))
    assert set(hits) == {b"NEEDLE"}
