"""Deployment packages: validate, store encrypted, extract once, read back verified.

The blocking work (hashing, decompression, encryption, fsync) runs in a worker thread so the
event loop keeps serving while a large upload is processed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from lamina.errors import EntityTooLarge
from lamina.model.function import CodeRef
from lamina.store.archive import ArchiveLimits, extract_archive, remove_tree
from lamina.store.blobs import CodeBlobStore
from lamina.store.codecache import CodeCache

log = logging.getLogger(__name__)


class CodeRepository:
    """The one place code bytes enter or leave Lamina."""

    def __init__(self, blobs: CodeBlobStore, cache: CodeCache, limits: ArchiveLimits) -> None:
        self._blobs = blobs
        self._cache = cache
        self._limits = limits
        # Digests being uploaded: garbage collection must not remove them before the caller
        # has recorded its reference. The lock orders pinning against discarding.
        self._pins: Counter[str] = Counter()
        self._extracted: dict[str, Path] = {}  # trees known to be in place (removed on discard)
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def staged(self, data: bytes) -> AsyncIterator[CodeRef]:
        """Validate and store an upload, pinned until the block exits.

        Raises InvalidCodePackage / EntityTooLarge before anything is kept.
        """
        self._check_zipped_size(data)
        digest = await asyncio.to_thread(_sha256, data)
        async with self._lock:
            self._pins[digest] += 1
        try:
            yield await asyncio.to_thread(self._accept, data, digest)
        finally:
            self._pins[digest] -= 1
            if not self._pins[digest]:
                del self._pins[digest]

    async def check(self, data: bytes) -> CodeRef:
        """Validate an upload without keeping anything (DryRun)."""
        return await asyncio.to_thread(self._check, data)

    async def read(self, digest: str) -> bytes:
        """The zip, decrypted and verified; raises CodeIntegrityError."""
        return await asyncio.to_thread(self._blobs.get, digest)

    async def ensure_extracted(self, digest: str) -> Path:
        """Re-extract from the verified blob if the cache lost the tree (e.g. after a wipe)."""
        known = self._extracted.get(digest)
        if known is not None:  # the invoke path: a dictionary lookup, no syscall
            return known
        if self._cache.contains(digest):
            path = self._extracted[digest] = self._cache.path_for(digest)
            return path
        path = await asyncio.to_thread(self._ensure_extracted, digest)
        self._extracted[digest] = path
        return path

    def is_extracted(self, digest: str) -> bool:
        return self._cache.contains(digest)

    def path_for(self, digest: str) -> Path:
        return self._cache.path_for(digest)

    async def discard_unless_used(
        self, digest: str, in_use: Callable[[str], Awaitable[bool]]
    ) -> None:
        """Delete a blob and its extracted tree unless pinned or `in_use` says it is used."""
        async with self._lock:
            if self._pins[digest] or await in_use(digest):
                return
            self._extracted.pop(digest, None)
            await asyncio.to_thread(self._discard, digest)

    async def collect_garbage(self, in_use: Callable[[str], Awaitable[bool]]) -> None:
        """Remove code a crash left behind without a reference (run at start)."""
        await asyncio.to_thread(self._cache.clear_staging)
        digests = set(self._blobs.digests()) | set(self._cache.digests())
        for digest in sorted(digests):
            await self.discard_unless_used(digest, in_use)

    def _accept(self, data: bytes, digest: str) -> CodeRef:
        summary = self._cache.ensure(digest, data)
        unzipped = summary.unzipped_bytes if summary else _tree_size(self._cache.path_for(digest))
        self._blobs.put(data)
        return CodeRef(digest, len(data), unzipped)

    def _check(self, data: bytes) -> CodeRef:
        self._check_zipped_size(data)
        with tempfile.TemporaryDirectory(prefix="lamina-dryrun-") as scratch:
            tree = Path(scratch) / "code"
            summary = extract_archive(data, tree, self._limits)
            remove_tree(tree)
        return CodeRef(_sha256(data), len(data), summary.unzipped_bytes)

    def _check_zipped_size(self, data: bytes) -> None:
        if len(data) > self._limits.max_zipped_bytes:
            raise EntityTooLarge(
                f"Zipped size must be smaller than {self._limits.max_zipped_bytes} bytes"
            )

    def _ensure_extracted(self, digest: str) -> Path:
        if not self._cache.contains(digest):
            log.info("code %s missing from the cache; extracting from the verified blob", digest)
            self._cache.ensure(digest, self._blobs.get(digest))
        return self._cache.path_for(digest)

    def _discard(self, digest: str) -> None:
        self._cache.remove(digest)
        self._blobs.delete(digest)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree_size(root: Path) -> int:
    return sum(p.lstat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
