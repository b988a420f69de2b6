"""Hostile deployment packages are refused and leave nothing behind; good ones extract read-only."""

from __future__ import annotations

import io
import os
import random
import stat
import struct
import zipfile
from typing import TYPE_CHECKING

import pytest

from lamina.errors import EntityTooLarge, InvalidCodePackage
from lamina.store.archive import (
    UNZIP_FAILED,
    ArchiveLimits,
    ArchiveSummary,
    extract_archive,
    remove_tree,
)

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT = ArchiveLimits()

# --- building archives ---------------------------------------------------------------------------


def build(
    *members: tuple[str | zipfile.ZipInfo, bytes], compression: int = zipfile.ZIP_DEFLATED
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members:
            archive.writestr(name, content, compress_type=compression)
    return buffer.getvalue()


def with_mode(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


def symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    return with_mode(name, stat.S_IFLNK | 0o777), target.encode()


def central_headers(data: bytes) -> list[int]:
    """Offsets of the central directory headers, in order."""
    end = data.rindex(b"PK\x05\x06")
    count, _, offset = struct.unpack_from("<HII", data, end + 10)
    offsets = []
    for _ in range(count):
        offsets.append(offset)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, offset + 28)
        offset += 46 + name_len + extra_len + comment_len
    return offsets


def local_headers(data: bytes) -> list[int]:
    return [struct.unpack_from("<I", data, c + 42)[0] for c in central_headers(data)]


def patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    patched = bytearray(data)
    struct.pack_into(fmt, patched, offset, value)
    return bytes(patched)


# Field offsets within the central and local headers.
CENTRAL_FLAGS, CENTRAL_CSIZE, CENTRAL_USIZE = 8, 20, 24
LOCAL_FLAGS, LOCAL_NAME = 6, 30


def extract(data: bytes, dest: Path, limits: ArchiveLimits = DEFAULT) -> ArchiveSummary:
    return extract_archive(data, dest, limits)


def refuse(
    data: bytes, tmp_path: Path, match: str, limits: ArchiveLimits = DEFAULT
) -> InvalidCodePackage:
    dest = tmp_path / "code"
    with pytest.raises(InvalidCodePackage, match=match) as exc:
        extract_archive(data, dest, limits)
    assert not os.path.lexists(dest)
    assert list(tmp_path.iterdir()) == []
    return exc.value


def refuse_as_corrupt(data: bytes, tmp_path: Path) -> None:
    assert refuse(data, tmp_path, "Could not unzip").message == UNZIP_FAILED


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- good archives -------------------------------------------------------------------------------


def test_extracts_a_read_only_tree(tmp_path: Path) -> None:
    data = build(
        ("index.py", b"def handler(event, context): return 1\n"),
        ("lib/", b""),
        ("lib/deep/util.py", b"X = 1\n"),
        (with_mode("bin/run", stat.S_IFREG | 0o755), b"#!/bin/sh\n"),
        (with_mode("notes.txt", stat.S_IFREG | 0o666), b"hi"),
    )
    dest = tmp_path / "code"
    summary = extract(data, dest)
    assert summary == ArchiveSummary(zipped_bytes=len(data), unzipped_bytes=56, entries=5)
    assert (dest / "lib" / "deep" / "util.py").read_bytes() == b"X = 1\n"
    assert (dest / "bin" / "run").read_bytes() == b"#!/bin/sh\n"
    assert mode_of(dest / "index.py") == 0o444
    assert mode_of(dest / "notes.txt") == 0o444
    assert mode_of(dest / "bin" / "run") == 0o555
    for directory in (dest, dest / "lib", dest / "lib" / "deep", dest / "bin"):
        assert mode_of(directory) == 0o555


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_large_entries_stream_intact(tmp_path: Path, compression: int) -> None:
    rng = random.Random(7)
    noisy = rng.randbytes(3_000_000)
    text = rng.randbytes(3_000_000).translate(bytes(b"abcd"[i % 4] for i in range(256)))
    data = build(("noise.bin", noisy), ("text.txt", text), compression=compression)
    summary = extract(data, tmp_path / "code", ArchiveLimits(max_ratio=5))
    assert (tmp_path / "code" / "noise.bin").read_bytes() == noisy
    assert (tmp_path / "code" / "text.txt").read_bytes() == text
    assert summary.unzipped_bytes == 6_000_000


def test_empty_archive_gives_an_empty_tree(tmp_path: Path) -> None:
    summary = extract(build(), tmp_path / "code")
    assert summary.entries == 0
    assert list((tmp_path / "code").iterdir()) == []


def test_dot_components_are_normalised(tmp_path: Path) -> None:
    extract(build(("./", b""), ("./a//b.txt", b"b")), tmp_path / "code")
    assert (tmp_path / "code" / "a" / "b.txt").read_bytes() == b"b"


def test_entries_in_any_order(tmp_path: Path) -> None:
    names = ["z/y/x/1", "a/2", "z/3", "z/y/4", "a/b/c/d/5", "6", "a/b/7"]
    extract(build(*[(name, name.encode()) for name in names]), tmp_path / "code")
    for name in names:
        assert (tmp_path / "code" / name).read_bytes() == name.encode()


def test_symlinks_inside_the_package_are_kept(tmp_path: Path) -> None:
    data = build(
        ("lib/real.py", b"real"),
        symlink("alias.py", "lib/real.py"),
        symlink("lib/up", "../alias.py"),
        symlink("here", "."),
        symlink("dangling", "lib/missing"),
    )
    dest = tmp_path / "code"
    extract(data, dest)
    assert os.readlink(dest / "alias.py") == "lib/real.py"
    assert (dest / "alias.py").read_bytes() == b"real"
    assert (dest / "lib" / "up").read_bytes() == b"real"
    assert os.readlink(dest / "here") == "."
    assert os.readlink(dest / "dangling") == "lib/missing"


def test_small_highly_compressible_files_are_fine(tmp_path: Path) -> None:
    extract(build(("zeros", bytes(1_000_000))), tmp_path / "code")
    assert (tmp_path / "code" / "zeros").stat().st_size == 1_000_000


def test_dest_must_not_exist(tmp_path: Path) -> None:
    dest = tmp_path / "code"
    dest.mkdir()
    (dest / "keep").write_bytes(b"mine")
    with pytest.raises(FileExistsError):
        extract(build(("a", b"a")), dest)
    assert (dest / "keep").read_bytes() == b"mine"


def test_remove_tree_deletes_a_read_only_tree(tmp_path: Path) -> None:
    dest = tmp_path / "code"
    extract(build(("a/b/c", b"c"), symlink("a/l", "b")), dest)
    remove_tree(dest)
    assert not os.path.lexists(dest)
    remove_tree(dest)  # idempotent


# --- sizes and bombs -----------------------------------------------------------------------------


def test_oversized_upload(tmp_path: Path) -> None:
    data = build(("a", b"a" * 100))
    with pytest.raises(EntityTooLarge) as exc:
        extract(data, tmp_path / "code", ArchiveLimits(max_zipped_bytes=len(data) - 1))
    assert exc.value.message == f"Zipped size must be smaller than {len(data) - 1} bytes"
    assert list(tmp_path.iterdir()) == []


def test_too_many_entries(tmp_path: Path) -> None:
    data = build(*[(f"f{i}", b"") for i in range(4)])
    refuse(data, tmp_path, "4 entries; the limit is 3", ArchiveLimits(max_entries=3))
    extract(data, tmp_path / "ok", ArchiveLimits(max_entries=4))


def test_total_unzipped_size(tmp_path: Path) -> None:
    data = build(("a", b"a" * 600), ("b", b"b" * 600))
    error = refuse(data, tmp_path, "Unzipped size", ArchiveLimits(max_unzipped_bytes=1000))
    assert error.message == "Unzipped size must be smaller than 1000 bytes"
    extract(data, tmp_path / "ok", ArchiveLimits(max_unzipped_bytes=1200))


def test_symlink_targets_count_towards_the_total(tmp_path: Path) -> None:
    data = build(("a", b"a" * 10), symlink("l", "a"))
    refuse(data, tmp_path, "smaller than 10 bytes", ArchiveLimits(max_unzipped_bytes=10))


def test_ratio_bomb(tmp_path: Path) -> None:
    data = build(("bomb", bytes(2 * 1024 * 1024)))
    refuse(data, tmp_path, r"compression ratio of 'bomb' exceeds 200:1")


def test_ratio_applies_above_the_floor_only(tmp_path: Path) -> None:
    data = build(("zeros", bytes(200_000)))
    refuse(data, tmp_path, "compression ratio", ArchiveLimits(ratio_floor_bytes=100_000))
    extract(data, tmp_path / "ok", ArchiveLimits(ratio_floor_bytes=200_000))


def test_header_understating_the_size(tmp_path: Path) -> None:
    # Claims 10 bytes: the decompressor must stop at 10, not trust the stream.
    data = build(("ok", b"fine"), ("liar", b"x" * 5000))
    central = central_headers(data)[1]
    local = local_headers(data)[1]
    data = patch(patch(data, central + CENTRAL_USIZE, "<I", 10), local + 22, "<I", 10)
    refuse(data, tmp_path, r"'liar' holds more data than its header declares \(10 bytes\)")


def test_header_overstating_the_size(tmp_path: Path) -> None:
    data = build(("liar", b"x" * 5000))
    data = patch(data, central_headers(data)[0] + CENTRAL_USIZE, "<I", 6000)
    refuse(data, tmp_path, r"'liar' holds less data than its header declares \(6000 bytes\)")


def test_overlapping_entries(tmp_path: Path) -> None:
    data = build(("first", b"1" * 100), ("second", b"2" * 100), compression=zipfile.ZIP_STORED)
    data = patch(data, central_headers(data)[0] + CENTRAL_CSIZE, "<I", 150)
    refuse(data, tmp_path, "entries 'first' and 'second' overlap")


# --- corrupt and unsupported archives ------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"hello, world", b"PK\x05\x06" + bytes(18)[:10]])
def test_not_a_zip(tmp_path: Path, data: bytes) -> None:
    refuse_as_corrupt(data, tmp_path)


def test_truncated_zip(tmp_path: Path) -> None:
    data = build(("a", b"a" * 1000))
    refuse_as_corrupt(data[: len(data) // 2], tmp_path)


def test_crc_mismatch_after_other_files_were_written(tmp_path: Path) -> None:
    data = build(("good", b"g" * 100), ("bad", b"b" * 100), compression=zipfile.ZIP_STORED)
    start = local_headers(data)[1] + LOCAL_NAME + len("bad")
    refuse_as_corrupt(data[:start] + b"X" + data[start + 1 :], tmp_path)


def test_corrupt_deflate_stream(tmp_path: Path) -> None:
    data = build(("a", os.urandom(1000)))
    start = local_headers(data)[0] + LOCAL_NAME + 1
    refuse_as_corrupt(data[:start] + b"\xff" * 8 + data[start + 8 :], tmp_path)


def test_encrypted_entry(tmp_path: Path) -> None:
    data = build(("secret", b"s"))
    data = patch(data, central_headers(data)[0] + CENTRAL_FLAGS, "<H", 0x1)
    data = patch(data, local_headers(data)[0] + LOCAL_FLAGS, "<H", 0x1)
    refuse_as_corrupt(data, tmp_path)


def test_encrypted_flag_in_the_local_header_only(tmp_path: Path) -> None:
    data = build(("secret", b"s"))
    refuse_as_corrupt(patch(data, local_headers(data)[0] + LOCAL_FLAGS, "<H", 0x1), tmp_path)


@pytest.mark.parametrize("compression", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_unsupported_compression(tmp_path: Path, compression: int) -> None:
    refuse_as_corrupt(build(("a", b"a"), compression=compression), tmp_path)


def test_local_name_disagreeing_with_the_directory(tmp_path: Path) -> None:
    data = build(("good.py", b"x"))
    start = local_headers(data)[0] + LOCAL_NAME
    refuse_as_corrupt(data[:start] + b"evil.py" + data[start + 7 :], tmp_path)


# --- paths ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("../x", "escapes the package root"),
        ("a/../../x", "escapes the package root"),
        ("a/../b", "escapes the package root"),
        ("..", "escapes the package root"),
        ("../", "escapes the package root"),
        ("/etc/x", "is absolute"),
        ("C:/x", "drive letter"),
        ("c:x", "drive letter"),
        ("a\\b", "backslash"),
        ("..\\x", "backslash"),
        ("", "is empty"),
        (".", "is empty"),
        ("a/" + "n" * 256, "longer than 255 bytes"),
        ("/".join(["d" * 200] * 21), "longer than 4095 bytes"),
    ],
)
def test_hostile_paths(tmp_path: Path, name: str, problem: str) -> None:
    data = build(("fine", b"ok"), (name or zipfile.ZipInfo(name), b"x"))
    error = refuse(data, tmp_path, "Invalid path in deployment package")
    assert repr(name) in error.message
    assert problem in error.message


def test_nul_byte_in_name(tmp_path: Path) -> None:
    data = build(("aXb", b"x")).replace(b"aXb", b"a\x00b")
    refuse(data, tmp_path, "'a\\\\x00b' contains a NUL byte")


def test_duplicate_names(tmp_path: Path) -> None:
    data = build(("lib/one.py", b"1"), ("lib/two.py", b"2")).replace(b"two.py", b"one.py")
    refuse(data, tmp_path, "duplicate entry 'lib/one.py'")


def test_names_equal_after_normalisation(tmp_path: Path) -> None:
    refuse(
        build(("a", b"1"), ("./a", b"2")), tmp_path, r"duplicate entry './a' \(same path as 'a'\)"
    )


def test_directory_and_file_of_the_same_name(tmp_path: Path) -> None:
    refuse(build(("a/", b""), ("a", b"2")), tmp_path, "duplicate entry 'a'")


def test_entry_inside_a_file(tmp_path: Path) -> None:
    refuse(build(("a", b"1"), ("a/b", b"2")), tmp_path, "'a/b' is inside 'a'")


def test_unsupported_file_type(tmp_path: Path) -> None:
    data = build((with_mode("pipe", stat.S_IFIFO | 0o644), b""))
    refuse(data, tmp_path, "'pipe' is not a regular file, directory or symlink")


# --- symlinks ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("passwd", "/etc/passwd"),
        ("up", "../x"),
        ("lib/up", "../../x"),
        ("lib/sneaky", "../lib/../../x"),
        ("back", "a\\..\\..\\x"),
        ("empty", ""),
        ("nul", "a\x00b"),
    ],
)
def test_symlinks_pointing_outside(tmp_path: Path, name: str, target: str) -> None:
    data = build(("lib/real.py", b"x"), symlink(name, target))
    error = refuse(data, tmp_path, "points outside the package")
    assert repr(name) in error.message


def test_symlink_escaping_through_another_symlink(tmp_path: Path) -> None:
    # Lexically d/l/../.. is the root, but the kernel resolves l (-> .) first: it is the parent.
    data = build(("d/", b""), symlink("d/l", "."), symlink("x", "d/l/../.."))
    refuse(data, tmp_path, r"'x' -> 'd/l/../..' points outside")


def test_symlink_with_overlong_target(tmp_path: Path) -> None:
    refuse(build(symlink("l", "a/" * 2100)), tmp_path, "target of 'l' is longer than 4095")


def test_symlink_with_non_utf8_target(tmp_path: Path) -> None:
    info, _ = symlink("l", "")
    refuse(build((info, b"\xff\xfe")), tmp_path, "points outside")


def test_file_written_through_a_symlinked_directory(tmp_path: Path) -> None:
    data = build(("real/", b""), symlink("link", "real"), ("link/payload", b"x"))
    refuse(data, tmp_path, "'link/payload' passes through the symlink 'link'")


def test_file_written_through_a_symlink_listed_later(tmp_path: Path) -> None:
    data = build(("link/payload", b"x"), symlink("link", "/etc"))
    refuse(data, tmp_path, "Invalid")


def test_symlink_named_like_a_directory(tmp_path: Path) -> None:
    refuse(build(symlink("dir/", "x")), tmp_path, "symlink named like a directory")
