"""The audit trail's hash chain: durable appends, verification of every kind of tampering, and
recovery at start. Real files in a temporary directory."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from lamina.api.observability import redact
from lamina.errors import StartupRefused
from lamina.observability.audit import (
    GENESIS,
    RECOVERED,
    RESUMED,
    AuditLog,
    parse_since,
    read_records,
    seal,
    timestamp,
    verify,
)

T0 = 1_700_000_000.0


def entry(n: int, function: str = "fn") -> dict[str, Any]:
    return {
        "time": timestamp(T0 + n * 60),
        "operation": "UpdateFunctionConfiguration",
        "function": function,
        "parameters": {"Timeout": n},
        "status": 200,
        "error": None,
    }


def write(directory: Path, entries: list[dict[str, Any]]) -> None:
    log = AuditLog(directory)
    log.open()

    async def append_all() -> None:
        for item in entries:
            await log.append(item)

    try:
        asyncio.run(append_all())
    finally:
        log.close()


def lines(directory: Path) -> list[bytes]:
    return (directory / "audit.log").read_bytes().splitlines(keepends=True)


def rewrite(directory: Path, new_lines: list[bytes]) -> None:
    (directory / "audit.log").write_bytes(b"".join(new_lines))


@pytest.fixture
def trail(tmp_path: Path) -> Path:
    directory = tmp_path / "audit"
    write(directory, [entry(n) for n in range(1, 6)])
    return directory


def test_records_chain_and_verify(trail: Path) -> None:
    records = [json.loads(line) for line in lines(trail)]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["prev"] == GENESIS
    for before, after in itertools.pairwise(records):
        assert after["prev"] == before["hash"]
    found = verify(trail)
    assert found.ok, found
    assert (found.records, found.last_seq, found.last_hash) == (5, 5, records[-1]["hash"])
    assert stat.S_IMODE(os.stat(trail / "audit.log").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(trail).st_mode) == 0o700


def test_seal_is_canonical() -> None:
    line, digest = seal({"b": 1, "a": "x"}, 1, GENESIS)
    record = json.loads(line)
    assert line.endswith(b"\n")
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    assert hashlib.sha256(canonical).hexdigest() == digest == record["hash"]


def test_reopen_continues_the_chain(trail: Path) -> None:
    write(trail, [entry(6), entry(7)])
    found = verify(trail)
    assert found.ok
    assert found.records == 7


def test_edited_record(trail: Path) -> None:
    rows = lines(trail)
    rows[2] = rows[2].replace(b'"Timeout":3', b'"Timeout":900')
    rewrite(trail, rows)
    found = verify(trail)
    assert not found.ok
    assert found.line == 3
    assert found.records == 2
    assert "edited" in (found.problem or "")


def test_edited_record_with_recomputed_hash(trail: Path) -> None:
    rows = lines(trail)
    record = json.loads(rows[1])
    record["status"] = 500
    forged, _ = seal({k: v for k, v in record.items() if k not in ("seq", "prev", "hash")}, 2,
                     record["prev"])  # fmt: skip
    rows[1] = forged
    rewrite(trail, rows)
    found = verify(trail)
    assert not found.ok
    assert found.line == 3
    assert "does not follow" in (found.problem or "")


def test_deleted_record(trail: Path) -> None:
    rows = lines(trail)
    del rows[2]
    rewrite(trail, rows)
    found = verify(trail)
    assert not found.ok
    assert found.line == 3
    assert "records 3..3 are missing" in (found.problem or "")


def test_reordered_records(trail: Path) -> None:
    rows = lines(trail)
    rows[1], rows[2] = rows[2], rows[1]
    rewrite(trail, rows)
    found = verify(trail)
    assert not found.ok
    assert found.line == 2


def test_records_cut_from_the_end(trail: Path) -> None:
    rewrite(trail, lines(trail)[:3])
    found = verify(trail)
    assert not found.ok
    assert found.line is None
    assert "ends at record 3 but the head says 5" in (found.problem or "")


def test_torn_tail(trail: Path) -> None:
    rows = lines(trail)
    rows[-1] = rows[-1][:40]
    rewrite(trail, rows)
    found = verify(trail)
    assert not found.ok
    assert found.line == 5
    assert "incomplete" in (found.problem or "")


def test_last_record_replaced(trail: Path) -> None:
    rows = lines(trail)
    previous = json.loads(rows[3])
    rows[4], _ = seal(entry(99), 5, previous["hash"])
    rewrite(trail, rows)
    found = verify(trail)
    assert not found.ok
    assert "does not match the head" in (found.problem or "")


def test_head_lagging_by_one_is_a_crash_window(trail: Path) -> None:
    record = json.loads(lines(trail)[3])
    (trail / "head").write_text(f"{4:020d} {record['hash']}\n")
    assert verify(trail).ok  # the record was fsynced, the head not yet
    write(trail, [])  # a restart repairs the head
    assert (trail / "head").read_text().split()[0] == f"{5:020d}"
    assert verify(trail).ok


def test_restart_after_truncation_leaves_evidence(trail: Path) -> None:
    rewrite(trail, lines(trail)[:3])
    write(trail, [entry(6)])
    records = [json.loads(line) for line in lines(trail)]
    assert [r["operation"] for r in records[3:]] == [RESUMED, "UpdateFunctionConfiguration"]
    assert records[3]["detail"]["head"][0] == 5
    found = verify(trail)
    assert not found.ok
    assert found.line == 4
    assert "damaged" in (found.problem or "")


def test_restart_after_torn_write_cuts_it_and_says_so(trail: Path) -> None:
    with (trail / "audit.log").open("ab") as file:
        file.write(b'{"seq":6,"time":"2')
    write(trail, [entry(7)])
    records = [json.loads(line) for line in lines(trail)]
    assert records[5]["operation"] == RECOVERED
    assert records[5]["detail"]["dropped_bytes"] == 18
    assert records[6]["prev"] == records[5]["hash"]
    found = verify(trail)
    assert not found.ok
    assert found.line == 6


def test_one_writer_at_a_time(trail: Path) -> None:
    first = AuditLog(trail)
    first.open()
    try:
        with pytest.raises(StartupRefused):
            AuditLog(trail).open()
    finally:
        first.close()


def test_read_records_filters(tmp_path: Path) -> None:
    directory = tmp_path / "audit"
    write(directory, [entry(n, "a" if n % 2 else "b") for n in range(1, 11)])
    assert [r["seq"] for r in read_records(directory, function="b")] == [2, 4, 6, 8, 10]
    since = timestamp(T0 + 8 * 60)
    assert [r["seq"] for r in read_records(directory, since=since)] == [8, 9, 10]
    assert [r["seq"] for r in read_records(directory, limit=2)] == [9, 10]
    assert read_records(tmp_path / "nothing") == []


def test_parse_since() -> None:
    now = T0
    assert parse_since("10m", now) == timestamp(now - 600)
    assert parse_since("2h", now) == timestamp(now - 7200)
    assert parse_since("1d", now) == timestamp(now - 86400)
    assert parse_since(str(T0), now) == timestamp(T0)
    assert parse_since("2023-11-14T22:13:20Z", now) == "2023-11-14T22:13:20.000Z"
    assert parse_since("2023-11-14T23:13:20+01:00", now) == "2023-11-14T22:13:20.000Z"
    with pytest.raises(ValueError, match="since must be"):
        parse_since("yesterday", now)


def test_redaction() -> None:
    zipped = b"PK\x03\x04 secret code"
    params = {
        "FunctionName": "f",
        "Code": {"ZipFile": zipped},
        "Environment": {"Variables": {"DB_PASSWORD": "hunter2", "MODE": "prod"}},
        "Payload": b"{}",
        "Tags": {"team": "x"},
        "Description": "d" * 5000,
    }
    kept = redact(params)
    assert kept["Code"]["ZipFile"] == {
        "Bytes": len(zipped),
        "Sha256": hashlib.sha256(zipped).hexdigest(),
    }
    assert kept["Environment"]["Variables"] == {"DB_PASSWORD": "***", "MODE": "***"}
    assert kept["Payload"] == "***"
    assert kept["Tags"] == {"team": "x"}
    assert len(kept["Description"]) == 4096 + 3
    assert "hunter2" not in json.dumps(kept)
