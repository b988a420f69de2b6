"""The audit trail: an append-only, hash-chained JSON-lines file of control-plane calls.

`<data_dir>/audit/audit.log` (0600, in a 0700 directory) holds one record per line, serialized
canonically (orjson, sorted keys). Each record carries `seq` (1, 2, ...), `prev` (the previous
record's `hash`; 64 zeros for the first) and `hash`, the SHA-256 of its own canonical form
without `hash`. `<data_dir>/audit/head` holds the last record's seq and hash, so that records
cut from the end are noticed too.

A record is written and fsynced (then the head) by one writer thread before the API answers:
a call the client saw answered is on disk. `verify` walks the chain and names the first broken
link: an edited record (its hash does not match), a deleted or reordered one (seq or prev do not
follow), a torn or cut tail (an incomplete line, or fewer records than the head says).

At start the writer finds the chain's end from the file's tail. If the file ends in a torn line
(a power loss mid-write) or disagrees with the head (records cut away while the server was
down), it repairs what it must to go on and appends a `lamina:AuditRecovered` /
`lamina:AuditResumed` record that says what it found; `verify` reports those as problems, so the
evidence stays. The chain is an unkeyed hash: it shows edits made without recomputing the chain
after them; keep `verify`'s head hash somewhere else to detect a rewritten chain too.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from lamina.errors import StartupRefused

GENESIS = "0" * 64
LOG_NAME = "audit.log"
HEAD_NAME = "head"
RECOVERED = "lamina:AuditRecovered"  # a torn last line was cut off at start
RESUMED = "lamina:AuditResumed"  # the log and the head disagreed at start
CHUNK = 65_536
_RELATIVE = re.compile(r"^(?P<n>\d+)(?P<unit>[smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

Record = dict[str, Any]


def timestamp(epoch: float) -> str:
    """Record time: fixed-width UTC ISO 8601 with milliseconds, so text order is time order."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_since(text: str, now: float) -> str:
    """`10m`, `2h`, `1d`, `30s`, an ISO 8601 time or epoch seconds -> a record timestamp.
    Raises ValueError."""
    text = text.strip()
    relative = _RELATIVE.match(text)
    if relative is not None:
        return timestamp(now - int(relative["n"]) * _UNITS[relative["unit"]])
    try:
        return timestamp(float(text))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"since must be like 10m, 2h, 1d, an ISO 8601 time or epoch seconds, not {text!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return timestamp(moment.timestamp())


def canonical(record: Mapping[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def seal(entry: Mapping[str, Any], seq: int, prev: str) -> tuple[bytes, str]:
    """The record's line (with its newline) and hash."""
    record = {**entry, "seq": seq, "prev": prev}
    digest = hashlib.sha256(canonical(record)).hexdigest()
    record["hash"] = digest
    return canonical(record) + b"\n", digest


def _head_bytes(seq: int, digest: str) -> bytes:
    return f"{seq:020d} {digest}\n".encode()  # fixed width: rewritten in place


def _read_head(path: Path) -> tuple[int, str] | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    seq, _, digest = text.strip().partition(" ")
    try:
        return int(seq), digest
    except ValueError:
        return -1, text.strip()[:80]  # unreadable: never matches


_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[None]"]


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)


class AuditLog:
    """The server's writer of the trail. `open()` at start, `close()` at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / LOG_NAME
        self._head_path = directory / HEAD_NAME
        self._fd = -1
        self._head_fd = -1
        self._seq = 0
        self._prev = GENESIS
        self._size = 0
        self._queue: list[tuple[Mapping[str, Any], _Waiter | None]] = []
        self._wake = threading.Condition()
        self._closing = False
        self._writer: threading.Thread | None = None

    def open(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        self._fd = os.open(self.path, flags, 0o600)
        os.fchmod(self._fd, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise StartupRefused(
                f"another Lamina server is writing the audit trail in {self.directory}"
            ) from None
        head = _read_head(self._head_path)
        self._head_fd = os.open(self._head_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fchmod(self._head_fd, 0o600)
        notes = self._recover(head)
        for note in notes:
            self._write(note)
        if notes:
            os.fsync(self._fd)
        if head != (self._seq, self._prev):
            self._write_head()  # a crash between the record's fsync and the head's
        self._writer = threading.Thread(target=self._serve, name="lamina-audit", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Write what is queued, then stop."""
        if self._writer is not None:
            with self._wake:
                self._closing = True
                self._wake.notify()
            self._writer.join()
            self._writer = None
        for fd in (self._fd, self._head_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._head_fd = -1

    async def append(self, entry: Mapping[str, Any]) -> None:
        """Record a change: returns once its record is fsynced. Records are chained in the
        order of the calls."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._enqueue(entry, (loop, done))
        await done

    def note(self, entry: Mapping[str, Any]) -> None:
        """Record a read: queued, written and fsynced within milliseconds, not waited for."""
        self._enqueue(entry, None)

    def _enqueue(self, entry: Mapping[str, Any], waiter: _Waiter | None) -> None:
        assert self._writer is not None, "AuditLog.open() first"
        with self._wake:
            self._queue.append((entry, waiter))
            self._wake.notify()

    # --- the writer thread ---------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                batch, self._queue = self._queue, []
                if not batch and self._closing:
                    return
            error: BaseException | None = None
            try:
                for entry, _ in batch:
                    self._write(entry)
                os.fsync(self._fd)
                self._write_head()
            except OSError as failure:
                error = failure
            for _, waiter in batch:
                if waiter is not None:
                    loop, done = waiter
                    loop.call_soon_threadsafe(_settle, done, error)

    def _write(self, entry: Mapping[str, Any]) -> None:
        """Append one record (the caller fsyncs the batch)."""
        line, digest = seal(entry, self._seq + 1, self._prev)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)  # no torn line in the middle of the chain
            raise
        self._size += len(line)
        self._seq += 1
        self._prev = digest

    def _write_head(self) -> None:
        os.pwrite(self._head_fd, _head_bytes(self._seq, self._prev), 0)
        os.fsync(self._head_fd)

    def _recover(self, head: tuple[int, str] | None) -> list[Record]:
        """Find the chain's end; what needs saying goes into the trail itself."""
        size = os.fstat(self._fd).st_size
        last, complete = _last_line(self._fd, size)
        notes: list[Record] = []
        if complete < size:
            fragment = os.pread(self._fd, size - complete, complete)
            os.ftruncate(self._fd, complete)
            os.fsync(self._fd)
            notes.append(
                _note(
                    RECOVERED,
                    {
                        "reason": "the log ended in an incomplete record; it was cut off",
                        "dropped_bytes": len(fragment),
                        "dropped_sha256": hashlib.sha256(fragment).hexdigest(),
                    },
                )
            )
        self._size = complete
        if last is not None:
            self._seq, self._prev = _chain_end(self.path, last)
        log_end = (self._seq, self._prev)
        if head is None and self._seq > 0:
            notes.append(_note(RESUMED, {"reason": "the head file was missing", "log": log_end}))
        elif head is not None and (
            head[0] > self._seq or (head[0] == self._seq and head[1] != self._prev)
        ):
            notes.append(
                _note(
                    RESUMED,
                    {
                        "reason": "the log ends before the head: records were removed or "
                        "replaced while the server was down",
                        "head": list(head),
                        "log": list(log_end),
                    },
                )
            )
        return notes


def _note(operation: str, detail: Mapping[str, Any]) -> Record:
    return {"time": timestamp(time.time()), "operation": operation, "detail": dict(detail)}


def _last_line(fd: int, size: int) -> tuple[bytes | None, int]:
    """(the last complete line without its newline, the offset just after it), reading the file
    backwards; (None, 0) when it has no complete line."""
    buffer = b""
    position = size
    while position > 0:
        step = min(CHUNK, position)
        position -= step
        buffer = os.pread(fd, step, position) + buffer
        end = buffer.rfind(b"\n")
        if end == -1:
            continue
        start = buffer.rfind(b"\n", 0, end)
        if start != -1 or position == 0:
            return buffer[start + 1 : end], position + end + 1
    return None, 0


def _chain_end(path: Path, last: bytes) -> tuple[int, str]:
    """The seq and hash to chain after. An unreadable last line (edited by hand) is chained
    to by the SHA-256 of its bytes; `verify` reports it."""
    try:
        record = orjson.loads(last)
        return int(record["seq"]), str(record["hash"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        with path.open("rb") as file:
            count = sum(1 for _ in file)
        return count, hashlib.sha256(last).hexdigest()


# --- reading and verifying (the server's endpoints and the offline CLI) ------------------------


def read_records(
    directory: Path,
    since: str | None = None,
    function: str | None = None,
    limit: int = 1000,
) -> list[Record]:
    """Records at or after `since` (a `timestamp()`), of `function` (a name), oldest first;
    the last `limit` of them. Lines that do not parse are skipped (verify reports them)."""
    found: list[Record] = []
    for _, raw in _lines(directory / LOG_NAME):
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if since is not None and str(record.get("time", "")) < since:
            continue
        if function is not None and record.get("function") != function:
            continue
        found.append(record)
        if len(found) > 2 * limit:
            del found[:-limit]
    return found[-limit:] if limit > 0 else []


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    try:
        file = path.open("rb")
    except FileNotFoundError:
        return
    with file:
        yield from enumerate(file, 1)


@dataclass(frozen=True, slots=True)
class Verification:
    """What `verify` found: ok, or the first broken link (its line number and why)."""

    ok: bool
    records: int  # records checked before the first problem (all of them when ok)
    last_seq: int
    last_hash: str  # keep it elsewhere: a rewritten chain would not end with it
    problem: str | None = None
    line: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "Ok": self.ok,
            "Records": self.records,
            "LastSeq": self.last_seq,
            "LastHash": self.last_hash,
            "Problem": self.problem,
            "Line": self.line,
        }


def verify(directory: Path) -> Verification:
    """Walk the chain from the first record; report the first broken link."""
    head = _read_head(directory / HEAD_NAME)  # before the log: the log is never behind it
    seq, prev, count = 0, GENESIS, 0

    def broken(problem: str, line: int | None) -> Verification:
        return Verification(False, count, seq, prev, problem, line)

    for number, raw in _lines(directory / LOG_NAME):
        if not raw.endswith(b"\n"):
            return broken(f"line {number} is an incomplete record: the log was cut", number)
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return broken(f"line {number} is not a JSON record: it was edited", number)
        problem = _check(record, seq, prev, number)
        if problem is not None:
            return broken(problem, number)
        if str(record.get("operation", "")) in (RECOVERED, RESUMED):
            detail = orjson.dumps(record.get("detail")).decode()
            return broken(
                f"line {number}: at {record.get('time')} the server found the trail damaged "
                f"and went on: {detail}",
                number,
            )
        seq, prev, count = record["seq"], record["hash"], count + 1
    if head is None:
        if seq > 0:
            return broken("the head file is missing", None)
    elif head[0] > seq:
        return broken(
            f"the log ends at record {seq} but the head says {head[0]}: records were removed "
            "from the end",
            None,
        )
    elif head[0] == seq and head[1] != prev:
        return broken(f"record {seq} does not match the head: the last record was replaced", None)
    elif head[0] < seq - 1:
        return broken(f"the head says {head[0]} but the log has {seq} records", None)
    return Verification(True, count, seq, prev)


def _check(record: Any, seq: int, prev: str, number: int) -> str | None:
    if not isinstance(record, dict) or not {"seq", "prev", "hash"} <= record.keys():
        return f"line {number} is not an audit record: it was edited"
    body = {k: v for k, v in record.items() if k != "hash"}
    if hashlib.sha256(canonical(body)).hexdigest() != record["hash"]:
        return f"line {number} (record {record['seq']}) was edited: its hash does not match"
    if record["seq"] != seq + 1:
        if isinstance(record["seq"], int) and record["seq"] > seq + 1:
            return (
                f"line {number}: records {seq + 1}..{record['seq'] - 1} are missing: "
                "they were deleted"
            )
        return f"line {number} (record {record['seq']}) is out of order after record {seq}"
    if record["prev"] != prev:
        return (
            f"line {number} (record {record['seq']}) does not follow the record before it: "
            "that one was edited or replaced"
        )
    return None
