"""Function log streams on disk: append-only segments written off the hot path, read lazily.

Writing: `write` only formats lines into an in-memory buffer per stream; a background task
flushes the buffers every `interval_s` with one append per stream (and `close` flushes the
rest), so an invocation never waits for the disk.

Layout, one directory per region, log group and stream (names percent-encoded behind a `=`,
or hashed behind a `#` with the real name in `.name` when too long for a file name):

    <root>/<region>/<group>/group.json                     name, creation time, retention
    <root>/<region>/<group>/<stream>/<seq>-<first ms>.log  records: `<epoch ms>\\t<text>\\n`
    <root>/<region>/<group>/<stream>/<seq>-<first ms>.idx  sparse index: (ms, offset) pairs

The text escapes backslashes and newlines, so one record is one line. Timestamps in a stream
never decrease (a clock stepping back is clamped), which makes both the segment names and the
index usable for seeking by time. A segment is closed after `SEGMENT_BYTES` or
`SEGMENT_SPAN_MS`, so retention deletes whole files.

Crash safety: appends go to the end of files only; a torn last line (no newline) is ignored by
readers and never appended to (a stream reopened after a crash starts a new segment), and a
torn index entry is ignored. Reads stream the files in blocks (`CHUNK`), never whole.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import logging
import mmap
import os
import re
import shutil
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote

import orjson

log = logging.getLogger(__name__)

MAX_OPEN_STREAMS = 256
SEGMENT_BYTES = 64 << 20
SEGMENT_SPAN_MS = 3_600_000
INDEX_EVERY = 64 << 10  # bytes of records between two index entries
CHUNK = 256 << 10  # read block
RETENTION_EVERY_S = 60.0
DAY_MS = 86_400_000
GROUP_META = "group.json"
NAME_FILE = ".name"
_ENTRY = struct.Struct("<qq")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)

Key = tuple[str, str, str]  # region, group, stream
Position = tuple[int, int]  # segment sequence number, byte offset of a record
Finder = Callable[[bytes, int, int], int]  # (data, start, end) -> index of a candidate or -1


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPED.sub(lambda m: "\n" if m[1] == "n" else m[1], text)


def encode_name(name: str) -> str:
    quoted = quote(name, safe="")
    if len(quoted) > 200:
        return "#" + hashlib.sha256(name.encode()).hexdigest()
    return "=" + quoted


def decode_name(directory: Path) -> str | None:
    entry = directory.name
    if entry.startswith("="):
        return unquote(entry[1:])
    if entry.startswith("#"):
        with contextlib.suppress(OSError):
            return (directory / NAME_FILE).read_text(encoding="utf-8")
    return None


def finder_for(literals: tuple[str, ...]) -> Finder | None:
    """A fast search for records that may contain one of `literals` (as stored, escaped)."""
    if not literals:
        return None
    encoded = [escape(literal).encode() for literal in literals]
    if len(encoded) == 1:
        return _LiteralFinder(encoded[0])
    regex = re.compile(b"|".join(re.escape(e) for e in sorted(encoded, key=len, reverse=True)))

    def search(data: bytes, start: int, end: int) -> int:
        match = regex.search(data, start, end)
        return -1 if match is None else match.start()

    return search


class _LiteralFinder:
    """Finds one literal, anchored on its rarest byte when that byte is rare in the data.

    `find` of a whole needle runs at about 2 GB/s; `find` of one byte is memchr, several times
    faster, and a rare byte has few false hits to check (the rare-byte idea of ripgrep's memchr
    crate, with the rarity sampled from the data instead of a static table). If false hits
    turn out frequent, it falls back to the plain search."""

    SAMPLE = 64 << 10
    RARE = 2048  # at most one occurrence per this many sampled bytes

    def __init__(self, needle: bytes) -> None:
        self._needle = needle
        self._anchor: int | None = None
        self._decided = len(needle) < 2

    def _decide(self, data: bytes, start: int, end: int) -> None:
        self._decided = True
        sample = data[start : min(end, start + self.SAMPLE)]
        counts = {sample.count(self._needle[i : i + 1]): i for i in range(len(self._needle))}
        fewest = min(counts)
        if fewest * self.RARE <= max(len(sample), 1):
            self._anchor = counts[fewest]

    def __call__(self, data: bytes, start: int, end: int) -> int:
        if not self._decided:
            self._decide(data, start, end)
        anchor = self._anchor
        if anchor is None:
            return data.find(self._needle, start, end)
        needle, size = self._needle, len(self._needle)
        byte = needle[anchor : anchor + 1]
        pos, misses = start + anchor, 0
        while True:
            hit = data.find(byte, pos, end)
            if hit < 0:
                return -1
            begin = hit - anchor
            if begin + size <= end and data[begin : begin + size] == needle:
                return begin
            misses += 1
            if misses > 64 and misses * self.RARE > hit - start:  # not rare here after all
                self._anchor = None
                return data.find(needle, hit - anchor, end)
            pos = hit + 1


# --- values --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Event:
    stream: str
    timestamp: int
    message: str
    seq: int
    offset: int
    end: int  # offset just after the record

    @property
    def position(self) -> Position:
        return (self.seq, self.offset)

    @property
    def next_position(self) -> Position:
        return (self.seq, self.end)


@dataclass(frozen=True, slots=True)
class Segment:
    seq: int
    first_ms: int
    path: Path

    @property
    def index_path(self) -> Path:
        return self.path.with_suffix(".idx")

    def index(self) -> list[tuple[int, int]]:
        try:
            data = self.index_path.read_bytes()
        except FileNotFoundError:
            return []
        usable = len(data) - len(data) % _ENTRY.size  # a torn last entry is ignored
        return list(_ENTRY.iter_unpack(data[:usable]))

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    created_ms: int
    retention_days: int | None
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class StreamInfo:
    name: str
    created_ms: int
    first_event_ms: int | None
    last_event_ms: int | None
    stored_bytes: int


def list_segments(directory: Path) -> list[Segment]:
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    segments = []
    for name in names:
        if name.endswith(".log"):
            seq, _, first = name[:-4].partition("-")
            if seq.isdigit() and first.isdigit():
                segments.append(Segment(int(seq), int(first), directory / name))
    segments.sort(key=lambda s: s.seq)
    return segments


def parse_record(line: bytes) -> tuple[int, str] | None:
    tab = line.find(b"\t")
    if tab <= 0:
        return None
    try:
        ms = int(line[:tab])
    except ValueError:
        return None
    return ms, unescape(line[tab + 1 :].decode("utf-8", "replace"))


# --- reading a segment ---------------------------------------------------------------------------


def _scan(
    path: Path, lo: int, hi: int | None, finder: Finder | None
) -> Iterator[tuple[int, bytes]]:
    """(offset, record) of the complete records in [lo, hi), or only those `finder` hits."""
    if finder is not None:
        yield from _scan_mapped(path, lo, hi, finder)
        return
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        handle.seek(lo)
        pos, carry = lo, b""
        while True:
            want = CHUNK if hi is None else min(CHUNK, hi - pos)
            block = handle.read(want) if want > 0 else b""
            if not block:
                return  # what is left in `carry` is a torn or unfinished record
            pos += len(block)
            data = carry + block
            cut = data.rfind(b"\n") + 1
            base = pos - len(data)
            yield from _all_lines(data, cut, base)
            carry = data[cut:]


def _all_lines(data: bytes, cut: int, base: int) -> Iterator[tuple[int, bytes]]:
    start = 0
    for line in data[:cut].split(b"\n")[:-1]:
        yield base + start, line
        start += len(line) + 1


def _scan_mapped(
    path: Path, lo: int, hi: int | None, finder: Finder
) -> Iterator[tuple[int, bytes]]:
    """The records `finder` hits, searched in the page cache through a read-only mapping:
    no copies and no read calls, so a rare term is found at memory speed."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        size = os.fstat(handle.fileno()).st_size
        end = size if hi is None else min(hi, size)
        if end <= lo:
            return
        with mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ) as mapped:
            cut = mapped.rfind(b"\n", lo, end) + 1  # a torn or unfinished record stays out
            start = lo
            while start < cut:
                hit = finder(mapped, start, cut)  # type: ignore[arg-type]
                if hit < 0:
                    return
                line_start = max(start, mapped.rfind(b"\n", start, hit) + 1)
                line_end = mapped.find(b"\n", hit, cut)
                yield line_start, mapped[line_start:line_end]
                start = line_end + 1


def _complete_end(handle: BinaryIO, lo: int, size: int) -> int:
    """The offset just after the last newline in [lo, size) (lo if none)."""
    pos = size
    while pos > lo:
        start = max(lo, pos - CHUNK)
        handle.seek(start)
        block = handle.read(pos - start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        pos = start
    return lo


def _scan_backward(path: Path, lo: int, hi: int | None) -> Iterator[tuple[int, bytes]]:
    """(offset, record) of the complete records in [lo, hi), last first."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return
    with handle:
        size = os.fstat(handle.fileno()).st_size
        pos = _complete_end(handle, lo, size if hi is None else min(hi, size))
        carry = b""
        while pos > lo:
            start = max(lo, pos - CHUNK)
            handle.seek(start)
            data = handle.read(pos - start) + carry
            head = 0
            if start > lo:
                newline = data.find(b"\n")
                if newline < 0:
                    carry, pos = data, start
                    continue
                head = newline + 1
            lines = list(_all_lines(data, len(data), start))
            yield from reversed([(off, line) for off, line in lines if off >= start + head])
            carry, pos = data[:head], start


# --- the store -----------------------------------------------------------------------------------


class _Pending:
    __slots__ = ("data", "first_ms", "last_ms", "marks", "since")

    def __init__(self) -> None:
        self.data = bytearray()
        self.marks: list[tuple[int, int]] = []  # (ms, offset in data) for the index
        self.first_ms = 0
        self.last_ms = 0
        self.since = 0  # bytes written since the last index entry


@dataclass(slots=True)
class _Open:
    directory: Path
    seq: int
    first_ms: int
    size: int
    fd: int
    index_fd: int

    def close(self) -> None:
        os.close(self.fd)
        os.close(self.index_fd)


@dataclass(slots=True)
class _GroupMeta:
    name: str
    created_ms: int
    retention_days: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class FileLogSink:
    """The log store: buffered appends (`write`), then reads, retention and deletion.

    Writes, deletions and retention run on the event loop; the read methods only read files
    and may run in a worker thread (a segment deleted meanwhile reads as empty)."""

    def __init__(
        self,
        root: Path,
        interval_s: float = 0.2,
        default_region: str = "us-east-1",
        now: Callable[[], float] = time.time,
    ) -> None:
        self._root = root
        self._interval = interval_s
        self._region = default_region
        self._now = now
        self._pending: dict[Key, _Pending] = {}
        self._open: OrderedDict[Key, _Open] = OrderedDict()
        self._meta: dict[Path, _GroupMeta] = {}
        self._task: asyncio.Task[None] | None = None

    # --- writing -------------------------------------------------------------------------------

    def write(
        self, group: str, stream: str, lines: list[tuple[int, str]], *, region: str | None = None
    ) -> None:
        key = (region or self._region, group, stream)
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending()
        data = pending.data
        for ms, text in lines:
            stamp = ms if ms >= pending.last_ms else pending.last_ms
            pending.last_ms = stamp
            if not data:
                pending.first_ms = stamp
            elif pending.since >= INDEX_EVERY:
                pending.marks.append((stamp, len(data)))
                pending.since = 0
            record = f"{stamp}\t{escape(text)}\n".encode()
            data += record
            pending.since += len(record)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._flush_forever())

    async def _flush_forever(self) -> None:
        next_retention = time.monotonic() + RETENTION_EVERY_S
        while True:
            await asyncio.sleep(self._interval)
            self.flush()
            if time.monotonic() >= next_retention:
                next_retention = time.monotonic() + RETENTION_EVERY_S
                try:
                    self.enforce_retention()
                except OSError:
                    log.exception("cannot enforce log retention")

    def flush(self) -> None:
        """Append every buffered stream to its segment (page cache; microseconds each)."""
        for key, pending in list(self._pending.items()):
            if not pending.data:
                del self._pending[key]  # idle since the last flush
                continue
            data, marks = bytes(pending.data), pending.marks
            pending.data, pending.marks = bytearray(), []
            try:
                self._append(key, pending.first_ms, data, marks)
            except OSError:
                log.exception("cannot write function log %s %s %s", *key)

    def _append(self, key: Key, first_ms: int, data: bytes, marks: list[tuple[int, int]]) -> None:
        state = self._state(key, first_ms, len(data))
        _write_all(state.fd, data)
        if marks:
            entries = b"".join(_ENTRY.pack(ms, state.size + off) for ms, off in marks)
            _write_all(state.index_fd, entries)
        state.size += len(data)

    def _state(self, key: Key, first_ms: int, incoming: int) -> _Open:
        state = self._open.get(key)
        if state is not None and state.size > 0:
            full = state.size + incoming > SEGMENT_BYTES
            if full or first_ms - state.first_ms > SEGMENT_SPAN_MS:
                self._forget(key)
                state = self._open_segment(key, state.directory, state.seq + 1, first_ms)
        if state is None:
            state = self._reopen(key, first_ms)
        self._open.move_to_end(key)
        while len(self._open) > MAX_OPEN_STREAMS:
            _, oldest = self._open.popitem(last=False)
            oldest.close()
        return state

    def _reopen(self, key: Key, first_ms: int) -> _Open:
        region, group, stream = key
        group_dir = self._group_dir(region, group)
        if not (group_dir / GROUP_META).exists():
            group_dir.mkdir(parents=True, exist_ok=True)
            if group_dir.name.startswith("#"):
                (group_dir / NAME_FILE).write_text(group, encoding="utf-8")
            self._save_meta(group_dir, _GroupMeta(group, int(self._now() * 1000)), durable=False)
        directory = group_dir / encode_name(stream)
        if not directory.exists():
            directory.mkdir()
            if directory.name.startswith("#"):
                (directory / NAME_FILE).write_text(stream, encoding="utf-8")
        segments = list_segments(directory)
        if not segments:
            return self._open_segment(key, directory, 1, first_ms)
        last = segments[-1]
        size = last.size()
        reusable = (
            size < SEGMENT_BYTES
            and first_ms - last.first_ms <= SEGMENT_SPAN_MS
            and (size == 0 or _ends_with_newline(last.path, size))
        )
        if not reusable:  # full, old, or torn by a crash: never append after a torn record
            return self._open_segment(key, directory, last.seq + 1, first_ms)
        state = self._open_segment(key, directory, last.seq, last.first_ms)
        state.size = size
        return state

    def _open_segment(self, key: Key, directory: Path, seq: int, first_ms: int) -> _Open:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        base = directory / f"{seq:010d}-{first_ms}"
        fd = os.open(base.with_suffix(".log"), flags, 0o600)
        index_fd = os.open(base.with_suffix(".idx"), flags, 0o600)
        state = self._open[key] = _Open(directory, seq, first_ms, 0, fd, index_fd)
        return state

    def _forget(self, key: Key) -> None:
        state = self._open.pop(key, None)
        if state is not None:
            state.close()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.flush()
        for state in self._open.values():
            state.close()
        self._open.clear()

    # --- paths and group metadata ----------------------------------------------------------------

    def _region_dir(self, region: str) -> Path:
        return self._root / encode_name(region)

    def _group_dir(self, region: str, group: str) -> Path:
        return self._region_dir(region) / encode_name(group)

    def _stream_dir(self, region: str, group: str, stream: str) -> Path:
        return self._group_dir(region, group) / encode_name(stream)

    def _load_meta(self, group_dir: Path) -> _GroupMeta | None:
        cached = self._meta.get(group_dir)
        if cached is not None:
            return cached
        meta: _GroupMeta | None
        try:
            raw = orjson.loads((group_dir / GROUP_META).read_bytes())
            meta = _GroupMeta(str(raw["name"]), int(raw["created"]), raw.get("retention"))
        except FileNotFoundError:
            if not group_dir.is_dir():
                return None
            meta = self._meta_from_directory(group_dir)  # a crash before group.json was written
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            meta = self._meta_from_directory(group_dir)
        if meta is None:
            return None
        self._meta[group_dir] = meta
        return meta

    def _meta_from_directory(self, group_dir: Path) -> _GroupMeta | None:
        name = decode_name(group_dir)
        try:
            created = int(group_dir.stat().st_mtime * 1000)
        except FileNotFoundError:
            return None
        return None if name is None else _GroupMeta(name, created)

    def _save_meta(self, group_dir: Path, meta: _GroupMeta, durable: bool) -> None:
        document = {"name": meta.name, "created": meta.created_ms, "retention": meta.retention_days}
        temporary = group_dir / f".{GROUP_META}.tmp"
        with temporary.open("wb") as handle:
            handle.write(orjson.dumps(document))
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, group_dir / GROUP_META)
        if durable:
            directory_fd = os.open(group_dir, os.O_RDONLY)
            try:
                os.fsync(directory_fd)
            finally:
                os.close(directory_fd)
        self._meta[group_dir] = meta

    # --- groups and streams ----------------------------------------------------------------------

    def groups(self, region: str) -> list[str]:
        names = []
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self._region_dir(region)):
                if entry.is_dir():
                    name = decode_name(Path(entry.path))
                    if name is not None:
                        names.append(name)
        return sorted(names)

    def group_info(self, region: str, group: str, with_size: bool = True) -> GroupInfo | None:
        group_dir = self._group_dir(region, group)
        meta = self._load_meta(group_dir)
        if meta is None:
            return None
        stored = 0
        if with_size:
            for stream_dir in _stream_dirs(group_dir):
                stored += sum(s.size() for s in list_segments(stream_dir))
        return GroupInfo(meta.name, meta.created_ms, meta.retention_days, stored)

    def streams(self, region: str, group: str) -> list[str]:
        names = (decode_name(d) for d in _stream_dirs(self._group_dir(region, group)))
        return sorted(name for name in names if name is not None)

    def stream_exists(self, region: str, group: str, stream: str) -> bool:
        return self._stream_dir(region, group, stream).is_dir()

    def stream_info(self, region: str, group: str, stream: str) -> StreamInfo | None:
        directory = self._stream_dir(region, group, stream)
        segments = list_segments(directory)
        if not segments:
            if not directory.is_dir():
                return None
            created = int(directory.stat().st_mtime * 1000)
            return StreamInfo(stream, created, None, None, 0)
        first = next(self.read_forward(region, group, stream), None)
        last = next(self.read_backward(region, group, stream), None)
        return StreamInfo(
            stream,
            segments[0].first_ms,
            first.timestamp if first else None,
            last.timestamp if last else None,
            sum(s.size() for s in segments),
        )

    # --- reading events --------------------------------------------------------------------------

    def read_forward(
        self,
        region: str,
        group: str,
        stream: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        at: Position | None = None,
        finder: Finder | None = None,
    ) -> Iterator[Event]:
        """Events with start_ms <= timestamp <= end_ms from position `at` on, oldest first;
        with `finder`, only records it hits (callers still check their pattern)."""
        segments = list_segments(self._stream_dir(region, group, stream))
        for i, segment in enumerate(segments):
            following = segments[i + 1] if i + 1 < len(segments) else None
            if at is not None and segment.seq < at[0]:
                continue
            if start_ms is not None and following is not None and following.first_ms < start_ms:
                continue
            if end_ms is not None and segment.first_ms > end_ms:
                return
            lo, hi = _bounds(segment, start_ms, end_ms)
            if at is not None and segment.seq == at[0]:
                lo = max(lo, at[1])
            if hi is not None and lo >= hi:
                continue
            for offset, line in _scan(segment.path, lo, hi, finder):
                record = parse_record(line)
                if record is None:
                    continue
                ms, text = record
                if (start_ms is None or ms >= start_ms) and (end_ms is None or ms <= end_ms):
                    yield Event(stream, ms, text, segment.seq, offset, offset + len(line) + 1)

    def read_backward(
        self,
        region: str,
        group: str,
        stream: str,
        *,
        start_ms: int | None = None,
        end_ms: int | None = None,
        before: Position | None = None,
    ) -> Iterator[Event]:
        """Events with start_ms <= timestamp <= end_ms strictly before `before`, newest first."""
        segments = list_segments(self._stream_dir(region, group, stream))
        for i in range(len(segments) - 1, -1, -1):
            segment = segments[i]
            following = segments[i + 1] if i + 1 < len(segments) else None
            if before is not None and segment.seq > before[0]:
                continue
            if end_ms is not None and segment.first_ms > end_ms:
                continue
            if start_ms is not None and following is not None and following.first_ms < start_ms:
                return
            lo, hi = _bounds(segment, start_ms, end_ms)
            if before is not None and segment.seq == before[0]:
                hi = before[1] if hi is None else min(hi, before[1])
            for offset, line in _scan_backward(segment.path, lo, hi):
                record = parse_record(line)
                if record is None:
                    continue
                ms, text = record
                if (start_ms is None or ms >= start_ms) and (end_ms is None or ms <= end_ms):
                    yield Event(stream, ms, text, segment.seq, offset, offset + len(line) + 1)

    # --- retention and deletion (event loop) -----------------------------------------------------

    def set_retention(self, region: str, group: str, days: int | None) -> bool:
        group_dir = self._group_dir(region, group)
        meta = self._load_meta(group_dir)
        if meta is None:
            return False
        meta.retention_days = days
        self._save_meta(group_dir, meta, durable=True)
        if days is not None:
            self.expire_group(region, group)
        return True

    def cutoff_ms(self, region: str, group: str) -> int | None:
        """Events older than this are past the group's retention (None: kept forever)."""
        meta = self._load_meta(self._group_dir(region, group))
        if meta is None or meta.retention_days is None:
            return None
        return int(self._now() * 1000) - meta.retention_days * DAY_MS

    def enforce_retention(self) -> None:
        """Delete every segment whose events are all past their group's retention."""
        for region_entry in _subdirectories(self._root):
            region = decode_name(region_entry)
            for group_dir in _subdirectories(region_entry):
                meta = self._load_meta(group_dir)
                if region is not None and meta is not None and meta.retention_days is not None:
                    self.expire_group(region, meta.name)

    def expire_group(self, region: str, group: str) -> None:
        cutoff = self.cutoff_ms(region, group)
        if cutoff is None:
            return
        for stream_dir in _stream_dirs(self._group_dir(region, group)):
            stream = decode_name(stream_dir)
            if stream is not None:
                self._expire_stream((region, group, stream), stream_dir, cutoff)

    def _expire_stream(self, key: Key, directory: Path, cutoff: int) -> None:
        segments = list_segments(directory)
        for i, segment in enumerate(segments):
            if i + 1 < len(segments) and segments[i + 1].first_ms < cutoff:
                expired = True  # its events are no newer than the next segment's first
            else:
                newest = next(_scan_backward(segment.path, 0, None), None)
                last = parse_record(newest[1]) if newest is not None else None
                expired = (last[0] if last is not None else segment.first_ms) < cutoff
                pending = self._pending.get(key)
                unflushed = pending is not None and bool(pending.data)
                expired = expired and (i + 1 < len(segments) or not unflushed)
            if not expired:
                return
            state = self._open.get(key)
            if state is not None and state.seq == segment.seq:
                self._forget(key)
            for path in (segment.path, segment.index_path):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        self.delete_stream(*key)  # every event expired: the stream goes too

    def delete_stream(self, region: str, group: str, stream: str) -> bool:
        key = (region, group, stream)
        self._pending.pop(key, None)
        self._forget(key)
        directory = self._stream_dir(region, group, stream)
        if not directory.is_dir():
            return False
        shutil.rmtree(directory, ignore_errors=True)
        return True

    def delete_group(self, region: str, group: str) -> bool:
        for key in [k for k in (*self._pending, *self._open) if k[:2] == (region, group)]:
            self._pending.pop(key, None)
            self._forget(key)
        group_dir = self._group_dir(region, group)
        self._meta.pop(group_dir, None)
        if not group_dir.is_dir():
            return False
        shutil.rmtree(group_dir, ignore_errors=True)
        return True


def _bounds(segment: Segment, start_ms: int | None, end_ms: int | None) -> tuple[int, int | None]:
    """Byte range of a segment that can hold events in [start_ms, end_ms], from its index."""
    if start_ms is None and end_ms is None:
        return 0, None
    index = segment.index()
    stamps = [ms for ms, _ in index]
    lo, hi = 0, None
    if start_ms is not None:
        i = bisect.bisect_left(stamps, start_ms)  # entries before i are < start_ms
        lo = index[i - 1][1] if i > 0 else 0
    if end_ms is not None:
        j = bisect.bisect_right(stamps, end_ms)  # entry j is the first > end_ms
        hi = index[j][1] if j < len(index) else None
    return lo, hi


def _subdirectories(directory: Path) -> list[Path]:
    try:
        return [Path(e.path) for e in os.scandir(directory) if e.is_dir()]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _stream_dirs(group_dir: Path) -> list[Path]:
    return _subdirectories(group_dir)


def _ends_with_newline(path: Path, size: int) -> bool:
    with path.open("rb") as handle:
        handle.seek(size - 1)
        return handle.read(1) == b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
