"""Encrypted, content-addressed storage for deployment packages.

Each blob is named by the SHA-256 of its plaintext and stored as
`b"LMB1" + nonce(12) + AES-256-GCM(ciphertext || tag)`, authenticated with the digest as
associated data: a blob that was altered, truncated, or moved to another digest's path fails
authentication, and the plaintext is re-hashed on every read. Code that fails either check is
never returned.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lamina.errors import CodeIntegrityError

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

log = logging.getLogger(__name__)

KEY_BYTES = 32
MAGIC = b"LMB1"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = len(MAGIC) + _NONCE_BYTES
_DIGEST = re.compile(r"[0-9a-f]{64}")
_PREFIX = re.compile(r"[0-9a-f]{2}")
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def check_digest(digest: str) -> str:
    """Return `digest` if it is 64 lowercase hex characters; it becomes a path, so nothing else."""
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise ValueError(f"not a lowercase hex SHA-256 digest: {digest!r}")
    return digest


def load_or_create_key(path: Path) -> bytes:
    """The 32-byte blob key at `path`, created (0o600, in a 0o700 directory) if missing."""
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        return _create_key(path)
    return _checked_key(path, key)


def _create_key(path: Path) -> bytes:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    _write_new(tmp, key)
    try:
        # link, not rename: it never replaces, so when two processes race to create the key
        # both end up with the winner's key instead of one of them encrypting with a lost key.
        os.link(tmp, path)
    except FileExistsError:
        return _checked_key(path, path.read_bytes())
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)
    return key


def _checked_key(path: Path, key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise CodeIntegrityError(
            f"code blob key {path} holds {len(key)} bytes; expected {KEY_BYTES}"
        )
    return key


class CodeBlobStore:
    """Blobs under `<root>/<digest[:2]>/<digest>`, encrypted with one AES-256-GCM key."""

    __slots__ = ("_aead", "_root")

    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"code blob key must be {KEY_BYTES} bytes, got {len(key)}")
        self._root = root
        self._aead = AESGCM(key)

    def path_for(self, digest: str) -> Path:
        check_digest(digest)
        return self._root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store `data` and return its digest. Idempotent; repairs a stored copy that is damaged."""
        digest = hashlib.sha256(data).hexdigest()
        path = self.path_for(digest)
        if path.exists() and self._verifies(digest):
            return digest
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, data, digest.encode("ascii"))
        tmp = path.with_name(f".{digest}.{secrets.token_hex(8)}.tmp")
        try:
            _write_new(tmp, MAGIC + nonce + sealed)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
        return digest

    def get(self, digest: str) -> bytes:
        """The verified plaintext; raises CodeIntegrityError rather than return doubtful code."""
        try:
            return self._open(digest)
        except _Damaged as damage:
            log.warning("code blob %s failed integrity verification: %s", digest, damage.reason)
            raise CodeIntegrityError(
                f"code blob {digest} failed integrity verification: {damage.reason}"
            ) from damage

    def exists(self, digest: str) -> bool:
        return self.path_for(digest).is_file()

    def delete(self, digest: str) -> None:
        path = self.path_for(digest)
        path.unlink(missing_ok=True)
        # Prefix directories are kept: removing one could race a concurrent put into it.

    def digests(self) -> Iterator[str]:
        """Every stored digest (temporary files of unfinished writes are not blobs)."""
        if not self._root.is_dir():
            return
        for prefix in self._root.iterdir():
            if _PREFIX.fullmatch(prefix.name) is None or not prefix.is_dir():
                continue
            for blob in prefix.iterdir():
                name = blob.name
                if _DIGEST.fullmatch(name) and name.startswith(prefix.name):
                    yield name

    def _verifies(self, digest: str) -> bool:
        try:
            self._open(digest)
        except _Damaged as damage:
            log.warning("replacing damaged code blob %s: %s", digest, damage.reason)
            return False
        return True

    def _open(self, digest: str) -> bytes:
        path = self.path_for(digest)
        try:
            stored = path.read_bytes()
        except FileNotFoundError:
            raise _Damaged("the blob file is missing") from None
        except OSError as exc:
            raise _Damaged(f"the blob file is unreadable ({exc.strerror})") from exc
        if len(stored) < _HEADER_BYTES + _TAG_BYTES:
            raise _Damaged(f"the blob file is truncated ({len(stored)} bytes)")
        if stored[: len(MAGIC)] != MAGIC:
            raise _Damaged("the blob file has an unknown format")
        nonce = stored[len(MAGIC) : _HEADER_BYTES]
        try:
            data = self._aead.decrypt(nonce, stored[_HEADER_BYTES:], digest.encode("ascii"))
        except InvalidTag:
            raise _Damaged(
                "authentication failed (altered, truncated, misplaced, or another key)"
            ) from None
        actual = hashlib.sha256(data).hexdigest()
        if not hmac.compare_digest(actual, digest):
            raise _Damaged(f"the content hashes to {actual}")
        return data


class _Damaged(Exception):
    """Why a blob cannot be trusted; turned into CodeIntegrityError at the public boundary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _write_new(path: Path, data: bytes) -> None:
    """Write a new 0o600 file and fsync it, so a later rename publishes complete bytes."""
    fd = os.open(path, _NEW_FILE, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
