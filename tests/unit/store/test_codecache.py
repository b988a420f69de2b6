"""The code cache extracts each version once, atomically, and can always delete what it made."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest

from lamina.errors import InvalidCodePackage
from lamina.store import codecache
from lamina.store.archive import ArchiveLimits, ArchiveSummary, extract_archive
from lamina.store.codecache import CodeCache

if TYPE_CHECKING:
    from pathlib import Path

LIMITS = ArchiveLimits()


def package(files: dict[str, bytes]) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    data = buffer.getvalue()
    return hashlib.sha256(data).hexdigest(), data


DIGEST, DATA = package({"index.py": b"def handler(e, c): return 1\n", "lib/util.py": b"X = 1\n"})


@pytest.fixture
def cache(tmp_path: Path) -> CodeCache:
    return CodeCache(tmp_path / "cache", LIMITS)


def staged(cache: CodeCache) -> list[str]:
    staging = cache.path_for(DIGEST).parent / ".staging"
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


def test_ensure_extracts_into_path_for(cache: CodeCache, tmp_path: Path) -> None:
    assert not cache.contains(DIGEST)
    summary = cache.ensure(DIGEST, DATA)
    tree = cache.path_for(DIGEST)
    assert tree == tmp_path / "cache" / DIGEST
    assert summary == ArchiveSummary(zipped_bytes=len(DATA), unzipped_bytes=34, entries=2)
    assert cache.contains(DIGEST)
    assert (tree / "lib" / "util.py").read_bytes() == b"X = 1\n"
    assert stat.S_IMODE(tree.stat().st_mode) == 0o555
    assert staged(cache) == []


def test_second_ensure_does_not_extract_again(
    cache: CodeCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache.ensure(DIGEST, DATA) is not None

    def must_not_run(*args: object, **kwargs: object) -> ArchiveSummary:
        raise AssertionError("extracted twice")

    monkeypatch.setattr(codecache, "extract_archive", must_not_run)
    assert cache.ensure(DIGEST, DATA) is None


def test_losing_a_race_discards_our_copy(cache: CodeCache, monkeypatch: pytest.MonkeyPatch) -> None:
    def winner_first(data: bytes, dest: Path, limits: ArchiveLimits, *, durable: bool) -> object:
        extract_archive(data, cache.path_for(DIGEST), limits)  # the other extraction
        (cache.path_for(DIGEST) / "index.py").chmod(0o400)  # mark the winner's tree
        return extract_archive(data, dest, limits, durable=durable)

    cache.path_for(DIGEST).parent.mkdir()
    monkeypatch.setattr(codecache, "extract_archive", winner_first)
    assert cache.ensure(DIGEST, DATA) is None
    assert stat.S_IMODE((cache.path_for(DIGEST) / "index.py").stat().st_mode) == 0o400
    assert staged(cache) == []


def test_concurrent_ensure_yields_one_tree(cache: CodeCache) -> None:
    digest, data = package({f"f{i}": os.urandom(2000) for i in range(200)})
    start = threading.Barrier(2)

    def ensure() -> ArchiveSummary | None:
        start.wait()
        return cache.ensure(digest, data)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: ensure(), range(2)))
    assert sorted(result is None for result in results) == [False, True]
    assert list(cache.digests()) == [digest]
    assert len(list(cache.path_for(digest).iterdir())) == 200
    assert staged(cache) == []


def test_bad_archive_leaves_nothing(cache: CodeCache) -> None:
    digest = hashlib.sha256(b"not a zip").hexdigest()
    with pytest.raises(InvalidCodePackage, match="Could not unzip"):
        cache.ensure(digest, b"not a zip")
    assert not cache.contains(digest)
    assert list(cache.digests()) == []
    assert staged(cache) == []


def test_ensure_refuses_data_that_is_not_the_digest(cache: CodeCache) -> None:
    other, _ = package({"other.py": b""})
    with pytest.raises(ValueError, match="does not hash"):
        cache.ensure(other, DATA)
    assert not cache.contains(other)


def test_remove_deletes_the_read_only_tree(cache: CodeCache) -> None:
    cache.ensure(DIGEST, DATA)
    assert stat.S_IMODE((cache.path_for(DIGEST) / "lib").stat().st_mode) == 0o555
    cache.remove(DIGEST)
    assert not os.path.lexists(cache.path_for(DIGEST))
    assert list(cache.digests()) == []
    assert staged(cache) == []
    cache.remove(DIGEST)  # idempotent
    assert cache.ensure(DIGEST, DATA) is not None  # and extractable again


def test_remove_of_unknown_digest(cache: CodeCache) -> None:
    cache.remove(DIGEST)
    assert not cache.contains(DIGEST)


def test_digests_lists_trees_only(cache: CodeCache) -> None:
    assert list(cache.digests()) == []
    other, other_data = package({"b.py": b"b"})
    cache.ensure(DIGEST, DATA)
    cache.ensure(other, other_data)
    (cache.path_for(DIGEST).parent / "stray").mkdir()
    assert sorted(cache.digests()) == sorted([DIGEST, other])


def test_clear_staging_removes_crash_leftovers(cache: CodeCache) -> None:
    staging = cache.path_for(DIGEST).parent / ".staging"
    staging.mkdir(parents=True)
    extract_archive(DATA, staging / f"{DIGEST}.dead", LIMITS)  # read-only, as a crash leaves it
    (staging / "half").mkdir()
    cache.clear_staging()
    assert not staging.exists()
    cache.clear_staging()  # nothing to clear
    assert cache.ensure(DIGEST, DATA) is not None


@pytest.mark.parametrize("digest", ["", "../x", "A" * 64, ".staging"])
def test_malformed_digests_are_rejected(cache: CodeCache, digest: str) -> None:
    with pytest.raises(ValueError, match="digest"):
        cache.path_for(digest)
    with pytest.raises(ValueError, match="digest"):
        cache.ensure(digest, DATA)
    with pytest.raises(ValueError, match="digest"):
        cache.remove(digest)
