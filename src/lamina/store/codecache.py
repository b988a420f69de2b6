"""Each code version extracted once, into a read-only tree named by its digest.

Trees appear atomically: extraction happens in a private staging directory that is renamed into
place, so a tree at `path_for(digest)` is always complete (and fsynced). Removal renames the
tree out of the way first, so readers never see a half-deleted one.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
from typing import TYPE_CHECKING

from lamina.store.archive import extract_archive, remove_tree
from lamina.store.blobs import check_digest, fsync_dir

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from lamina.store.archive import ArchiveLimits, ArchiveSummary

log = logging.getLogger(__name__)

_STAGING = ".staging"
_TAKEN = (errno.EEXIST, errno.ENOTEMPTY)  # what rename(2) says when the target tree exists


class CodeCache:
    """Extracted trees under `<root>/<digest>`; `<root>/.staging/` holds work in progress."""

    __slots__ = ("_limits", "_root")

    def __init__(self, root: Path, limits: ArchiveLimits) -> None:
        self._root = root
        self._limits = limits

    def path_for(self, digest: str) -> Path:
        return self._root / check_digest(digest)

    def contains(self, digest: str) -> bool:
        return self.path_for(digest).is_dir()

    def ensure(self, digest: str, data: bytes) -> ArchiveSummary | None:
        """Extract `data` (whose SHA-256 is `digest`) unless its tree is already there.

        Returns the summary when this call extracted, None when the tree existed or a concurrent
        call installed it first. Raises InvalidCodePackage / EntityTooLarge for a bad archive.
        """
        final = self.path_for(digest)
        if final.is_dir():
            return None
        if hashlib.sha256(data).hexdigest() != digest:
            # A mismatch would poison the cache for good: the name is the only check readers do.
            raise ValueError(f"data does not hash to the code digest {digest}")
        staging = self._staging_dir(digest)
        summary = extract_archive(data, staging, self._limits, durable=True)
        # Moving a directory to another parent rewrites its '..' entry, which needs write
        # permission on the directory itself (root skips the check; others do not).
        os.chmod(staging, 0o755)
        try:
            os.rename(staging, final)
            os.chmod(final, 0o555)
        except OSError as exc:
            remove_tree(staging)
            if exc.errno not in _TAKEN:
                raise
            log.debug("code %s was extracted concurrently; discarding this copy", digest)
            return None
        fsync_dir(self._root)
        return summary

    def remove(self, digest: str) -> None:
        """Delete the tree if present; works on the read-only tree without root privileges."""
        tree = self.path_for(digest)
        if not os.path.lexists(tree):
            return
        doomed = self._staging_dir(f"{digest}.removing")
        try:
            os.chmod(tree, 0o755)  # see ensure(): renaming a directory needs write access to it
            os.rename(tree, doomed)
        except FileNotFoundError:
            return
        remove_tree(doomed)

    def digests(self) -> Iterator[str]:
        if not self._root.is_dir():
            return
        for entry in self._root.iterdir():
            if entry.is_dir() and _is_digest(entry.name):
                yield entry.name

    def clear_staging(self) -> None:
        """Remove what a crash left in staging; call only while no `ensure` or `remove` runs."""
        remove_tree(self._root / _STAGING)

    def _staging_dir(self, label: str) -> Path:
        """A fresh, unused path in staging (the directory itself is not created)."""
        staging = self._root / _STAGING
        staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        return staging / f"{label}.{secrets.token_hex(8)}"


def _is_digest(name: str) -> bool:
    try:
        check_digest(name)
    except ValueError:
        return False
    return True
