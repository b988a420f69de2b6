"""Hostile-zip-safe validation and extraction of deployment packages.

Function code zips are untrusted. The whole archive is checked before anything is written:
names, entry types, duplicates, nesting under symlinks or files, symlink targets, overlapping
data, and the sizes the headers declare. Entry data is then decompressed in bounded chunks and
counted as it streams (headers are never trusted), and written below `dest` through directory
descriptors opened with O_NOFOLLOW, so nothing can land outside the tree. Any failure removes
`dest` entirely.
"""

from __future__ import annotations

import contextlib
import enum
import io
import itertools
import os
import re
import shutil
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lamina.errors import EntityTooLarge, InvalidCodePackage

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from pathlib import Path

UNZIP_FAILED = "Could not unzip uploaded file. Please check your file, then try to upload again."

_CHUNK = 1 << 16  # compressed bytes fed / plain bytes produced per step: bounds memory
_MAX_NAME_BYTES = 255  # NAME_MAX
_MAX_PATH_BYTES = 4095  # PATH_MAX less the terminating NUL
_SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED})
_ENCRYPTED = 0x0001 | 0x0040  # traditional and strong encryption flag bits
_UTF8_NAMES = 0x0800
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_MAGIC = b"PK\x03\x04"
_DRIVE = re.compile(r"[A-Za-z]:")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    max_zipped_bytes: int = 52_428_800  # AWS direct upload cap
    max_unzipped_bytes: int = 262_144_000  # AWS unzipped cap (function + layers)
    max_entries: int = 100_000
    max_ratio: int = 200  # per-entry uncompressed/compressed cap ...
    ratio_floor_bytes: int = 1_048_576  # ... applied only to entries bigger than this


@dataclass(frozen=True, slots=True)
class ArchiveSummary:
    zipped_bytes: int
    unzipped_bytes: int  # real bytes written, not the headers' claims
    entries: int


def extract_archive(
    data: bytes, dest: Path, limits: ArchiveLimits, *, durable: bool = False
) -> ArchiveSummary:
    """Validate `data` and extract it into the new directory `dest` as a read-only tree.

    Files become 0o444 (0o555 if the zip marks any execute bit), directories 0o555. With
    `durable`, every file and directory is fsynced before returning. Raises EntityTooLarge or
    InvalidCodePackage, after which `dest` does not exist; FileExistsError if it already did.
    """
    if len(data) > limits.max_zipped_bytes:
        raise EntityTooLarge(f"Zipped size must be smaller than {limits.max_zipped_bytes} bytes")
    budget = _Budget(limits.max_unzipped_bytes)
    streamer = _Streamer(memoryview(data), limits, budget)
    plan = _plan(data, streamer, limits)
    os.mkdir(dest, 0o700)
    try:
        _write_tree(plan, dest, streamer, durable=durable)
    except BaseException:
        remove_tree(dest)
        raise
    return ArchiveSummary(len(data), budget.used, plan.entries)


def remove_tree(path: Path) -> None:
    """Delete a tree, including a read-only one, without root: give directories u+w first."""
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    for dirpath, _dirnames, _filenames in os.walk(path):  # never descends into symlinks
        with contextlib.suppress(FileNotFoundError):
            os.chmod(dirpath, 0o700)
    shutil.rmtree(path)


# --- planning: everything is checked before the first byte is written ----------------------------


class _Kind(enum.Enum):
    FILE = "file"
    DIR = "directory"
    SYMLINK = "symlink"


@dataclass(frozen=True, slots=True)
class _Entry:
    name: str  # exactly as in the archive, for messages
    parts: tuple[str, ...]  # normalised path components below the root
    kind: _Kind
    info: zipfile.ZipInfo
    start: int  # offset of the entry's compressed data in the archive
    executable: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    dirs: list[tuple[str, ...]]  # explicit and implied, parents before children
    files: list[_Entry]
    links: list[tuple[_Entry, str]]
    entries: int


def _plan(data: bytes, streamer: _Streamer, limits: ArchiveLimits) -> _Plan:
    infos = _read_directory(data)
    if len(infos) > limits.max_entries:
        raise InvalidCodePackage(
            f"Invalid deployment package: it has {len(infos)} entries; "
            f"the limit is {limits.max_entries}."
        )
    view = memoryview(data)
    entries = [entry for info in infos if (entry := _entry(view, info)) is not None]
    _check_unique(entries)
    _check_nesting(entries)
    _check_overlap(entries)
    declared = sum(e.info.file_size for e in entries if e.kind is not _Kind.DIR)
    if declared > limits.max_unzipped_bytes:
        raise _too_big(limits.max_unzipped_bytes)
    symlinks = {e.parts for e in entries if e.kind is _Kind.SYMLINK}
    links = [(e, _link_target(e, streamer, symlinks)) for e in entries if e.kind is _Kind.SYMLINK]
    return _Plan(
        dirs=_directories(entries),
        files=[e for e in entries if e.kind is _Kind.FILE],
        links=links,
        entries=len(infos),
    )


def _read_directory(data: bytes) -> list[zipfile.ZipInfo]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.infolist()
    except (
        zipfile.BadZipFile,
        NotImplementedError,
        ValueError,
        EOFError,
        OSError,
        struct.error,
    ) as exc:
        raise InvalidCodePackage(UNZIP_FAILED) from exc


def _entry(view: memoryview, info: zipfile.ZipInfo) -> _Entry | None:
    name = info.orig_filename  # `filename` silently drops everything after a NUL
    if info.flag_bits & _ENCRYPTED or info.compress_type not in _SUPPORTED_METHODS:
        # Only stored and deflated: zipfile inflates bzip2/lzma chunks without an output bound.
        raise InvalidCodePackage(UNZIP_FAILED)
    kind = _kind(info)
    parts = _path_parts(name)
    if not parts:
        if kind is _Kind.DIR:
            return None  # "./" names the root itself
        raise _bad_path(name, "is empty")
    start = _data_start(view, info)
    mode = info.external_attr >> 16
    return _Entry(name, parts, kind, info, start, executable=bool(mode & 0o111))


def _kind(info: zipfile.ZipInfo) -> _Kind:
    name = info.orig_filename
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        if name.endswith("/"):
            raise _bad_path(name, "is a symlink named like a directory")
        return _Kind.SYMLINK
    if file_type == stat.S_IFDIR or name.endswith("/"):
        return _Kind.DIR
    if file_type in (0, stat.S_IFREG):
        return _Kind.FILE
    raise InvalidCodePackage(
        f"Invalid entry in deployment package: {name!r} is not a regular file, directory or "
        "symlink."
    )


def _path_parts(name: str) -> tuple[str, ...]:
    problem = _path_problem(name)
    if problem:
        raise _bad_path(name, problem)
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _bad_path(name, "escapes the package root")
    if any(len(part.encode()) > _MAX_NAME_BYTES for part in parts):
        raise _bad_path(name, f"has a component longer than {_MAX_NAME_BYTES} bytes")
    if len("/".join(parts).encode()) > _MAX_PATH_BYTES:
        raise _bad_path(name, f"is longer than {_MAX_PATH_BYTES} bytes")
    return parts


def _path_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if "\x00" in name:
        return "contains a NUL byte"
    if "\\" in name:
        return "uses backslash separators"
    if name.startswith("/"):
        return "is absolute, which escapes the package root"
    if _DRIVE.match(name):
        return "starts with a drive letter, which escapes the package root"
    return None


def _data_start(view: memoryview, info: zipfile.ZipInfo) -> int:
    """Where the entry's data begins, after checking its local header agrees with the directory.

    A local header that disagrees on name or method is how archives show different contents to
    different unzippers.
    """
    offset = info.header_offset
    if offset < 0 or offset + _LOCAL_HEADER.size > len(view):
        raise InvalidCodePackage(UNZIP_FAILED)
    magic, _, flags, method, *_, name_len, extra_len = _LOCAL_HEADER.unpack_from(view, offset)
    name_start = offset + _LOCAL_HEADER.size
    start = name_start + name_len + extra_len
    if (
        magic != _LOCAL_MAGIC
        or method != info.compress_type
        or flags & _ENCRYPTED
        or start + info.compress_size > len(view)
    ):
        raise InvalidCodePackage(UNZIP_FAILED)
    raw_name = bytes(view[name_start : name_start + name_len])
    try:
        local_name = raw_name.decode("utf-8" if flags & _UTF8_NAMES else "cp437")
    except UnicodeDecodeError as exc:
        raise InvalidCodePackage(UNZIP_FAILED) from exc
    if local_name != info.orig_filename:
        raise InvalidCodePackage(UNZIP_FAILED)
    return int(start)


def _check_unique(entries: Iterable[_Entry]) -> None:
    seen: dict[tuple[str, ...], str] = {}
    for entry in entries:
        first = seen.get(entry.parts)
        if first is not None:
            also = "" if first == entry.name else f" (same path as {first!r})"
            raise InvalidCodePackage(
                f"Invalid deployment package: duplicate entry {entry.name!r}{also}."
            )
        seen[entry.parts] = entry.name


def _check_nesting(entries: list[_Entry]) -> None:
    """No entry may sit below a symlink (writes would follow it) or below a regular file."""
    by_parts = {entry.parts: entry for entry in entries}
    for entry in entries:
        for depth in range(1, len(entry.parts)):
            above = by_parts.get(entry.parts[:depth])
            if above is None or above.kind is _Kind.DIR:
                continue
            what = "passes through the symlink" if above.kind is _Kind.SYMLINK else "is inside"
            raise InvalidCodePackage(
                f"Invalid path in deployment package: {entry.name!r} {what} {above.name!r}."
            )


def _check_overlap(entries: list[_Entry]) -> None:
    """Entries sharing bytes are the trick behind non-recursive zip bombs; zips never need it."""
    ordered = sorted(entries, key=lambda entry: entry.info.header_offset)
    for before, after in itertools.pairwise(ordered):
        if after.info.header_offset < before.start + before.info.compress_size:
            raise InvalidCodePackage(
                f"Invalid deployment package: entries {before.name!r} and {after.name!r} overlap."
            )


def _directories(entries: list[_Entry]) -> list[tuple[str, ...]]:
    dirs: set[tuple[str, ...]] = set()
    for entry in entries:
        dirs.update(entry.parts[:depth] for depth in range(1, len(entry.parts)))
        if entry.kind is _Kind.DIR:
            dirs.add(entry.parts)
    return sorted(dirs)  # a prefix sorts first, so parents precede their children


def _link_target(entry: _Entry, streamer: _Streamer, symlinks: set[tuple[str, ...]]) -> str:
    if entry.info.file_size > _MAX_PATH_BYTES:
        raise InvalidCodePackage(
            f"Invalid symlink in deployment package: the target of {entry.name!r} is longer "
            f"than {_MAX_PATH_BYTES} bytes."
        )
    raw = b"".join(streamer.chunks(entry))
    try:
        target = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad_link(entry, repr(raw)) from None
    if not target or "\x00" in target or "\\" in target or target.startswith("/"):
        raise _bad_link(entry, target)
    if not _resolves_inside(entry.parts[:-1], target, symlinks):
        raise _bad_link(entry, target)
    return target


def _resolves_inside(base: tuple[str, ...], target: str, symlinks: set[tuple[str, ...]]) -> bool:
    """Resolve `target` from directory `base` lexically, as the kernel would.

    Lexical resolution is only exact while no component is itself a symlink ("l/.." is not
    "." when l is a link), so passing through another symlink of the archive is refused.
    """
    resolved = list(base)
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if tuple(resolved) in symlinks:
            return False
        if part == "..":
            if not resolved:
                return False
            resolved.pop()
        else:
            resolved.append(part)
    return True


# --- streaming: real bytes, counted as they are produced -----------------------------------------


class _Budget:
    """The archive-wide count of real uncompressed bytes."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def charge(self, size: int) -> None:
        self.used += size
        if self.used > self.limit:
            raise _too_big(self.limit)


class _Streamer:
    """Yields an entry's bytes, stopping at the first chunk that breaks a limit."""

    __slots__ = ("_budget", "_limits", "_view")

    def __init__(self, view: memoryview, limits: ArchiveLimits, budget: _Budget) -> None:
        self._view = view
        self._limits = limits
        self._budget = budget

    def chunks(self, entry: _Entry) -> Iterator[bytes]:
        info = entry.info
        raw = self._view[entry.start : entry.start + info.compress_size]
        size = crc = 0
        for chunk in _decompress(raw, info.compress_type):
            size += len(chunk)
            if size > info.file_size:
                raise _lying(entry, "more")
            self._budget.charge(len(chunk))
            self._check_ratio(entry, size)
            crc = zlib.crc32(chunk, crc)
            yield chunk
        if size != info.file_size:
            raise _lying(entry, "less")
        if crc != info.CRC:
            raise InvalidCodePackage(UNZIP_FAILED)

    def _check_ratio(self, entry: _Entry, size: int) -> None:
        limits = self._limits
        if size > limits.ratio_floor_bytes and size > limits.max_ratio * entry.info.compress_size:
            raise InvalidCodePackage(
                f"Invalid deployment package: the compression ratio of {entry.name!r} exceeds "
                f"{limits.max_ratio}:1."
            )


def _decompress(raw: memoryview, method: int) -> Iterator[bytes]:
    if method == zipfile.ZIP_STORED:
        for offset in range(0, len(raw), _CHUNK):
            yield bytes(raw[offset : offset + _CHUNK])
    else:
        yield from _inflate(raw)


def _inflate(raw: memoryview) -> Iterator[bytes]:
    """Raw deflate, never more than _CHUNK bytes of output per step whatever the ratio."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    offset = 0
    pending = b""
    while not inflater.eof:
        if not pending:
            pending = bytes(raw[offset : offset + _CHUNK])
            offset += len(pending)
        try:
            out = inflater.decompress(pending, _CHUNK)
        except zlib.error as exc:
            raise InvalidCodePackage(UNZIP_FAILED) from exc
        consumed = len(pending) - len(inflater.unconsumed_tail)
        pending = inflater.unconsumed_tail
        if not (out or consumed or inflater.eof):
            raise InvalidCodePackage(UNZIP_FAILED)  # the stream ends before its last block
        if out:
            yield out


# --- writing: descriptors opened with O_NOFOLLOW, symlinks last --------------------------------


class _Tree:
    """Directory descriptors below the extraction root, caching the most recent one."""

    __slots__ = ("_fd", "_parts", "_root")

    def __init__(self, root_fd: int) -> None:
        self._root = root_fd
        self._parts: tuple[str, ...] = ()
        self._fd = -1

    def open_dir(self, parts: tuple[str, ...]) -> int:
        """A descriptor for the directory `parts`; owned by the tree, valid until the next call."""
        if not parts:
            return self._root
        if self._fd >= 0 and parts == self._parts:
            return self._fd
        base, done = self._root, 0
        if self._fd >= 0 and parts[: len(self._parts)] == self._parts:
            base, done = self._fd, len(self._parts)
        fd = base
        try:
            for part in parts[done:]:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                if fd != base:
                    os.close(fd)
                fd = child
        except BaseException:
            if fd != base:
                os.close(fd)
            raise
        self.close()
        self._parts, self._fd = parts, fd
        return fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = -1


def _write_tree(plan: _Plan, dest: Path, streamer: _Streamer, *, durable: bool) -> None:
    root_fd = os.open(dest, _DIR_FLAGS)
    tree = _Tree(root_fd)
    try:
        for parts in plan.dirs:
            os.mkdir(parts[-1], 0o700, dir_fd=tree.open_dir(parts[:-1]))
        for entry in plan.files:
            _write_file(tree, entry, streamer.chunks(entry), durable=durable)
        for entry, target in plan.links:
            os.symlink(target, entry.parts[-1], dir_fd=tree.open_dir(entry.parts[:-1]))
        for parts in reversed(plan.dirs):
            _seal(tree.open_dir(parts), durable=durable)
        _seal(root_fd, durable=durable)
    finally:
        tree.close()
        os.close(root_fd)


def _write_file(tree: _Tree, entry: _Entry, chunks: Iterator[bytes], *, durable: bool) -> None:
    parent = tree.open_dir(entry.parts[:-1])
    fd = os.open(entry.parts[-1], _NEW_FILE_FLAGS, 0o600, dir_fd=parent)
    with open(fd, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        os.fchmod(fd, 0o555 if entry.executable else 0o444)
        if durable:
            os.fsync(fd)


def _seal(fd: int, *, durable: bool) -> None:
    os.fchmod(fd, 0o555)
    if durable:
        os.fsync(fd)


# --- messages ------------------------------------------------------------------------------------


def _too_big(limit: int) -> InvalidCodePackage:
    return InvalidCodePackage(f"Unzipped size must be smaller than {limit} bytes")


def _bad_path(name: str, problem: str) -> InvalidCodePackage:
    return InvalidCodePackage(f"Invalid path in deployment package: {name!r} {problem}.")


def _bad_link(entry: _Entry, target: str) -> InvalidCodePackage:
    return InvalidCodePackage(
        f"Invalid symlink in deployment package: {entry.name!r} -> {target!r} points outside "
        "the package."
    )


def _lying(entry: _Entry, more_or_less: str) -> InvalidCodePackage:
    return InvalidCodePackage(
        f"Invalid deployment package: {entry.name!r} holds {more_or_less} data than its header "
        f"declares ({entry.info.file_size} bytes)."
    )
