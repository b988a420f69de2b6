"""The encrypted blob store returns exactly what was stored, or refuses."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lamina.errors import CodeIntegrityError
from lamina.store.blobs import CodeBlobStore, check_digest, load_or_create_key

if TYPE_CHECKING:
    from pathlib import Path

DATA = b"PK\x03\x04 pretend this is a deployment package " * 100


@pytest.fixture
def store(tmp_path: Path) -> CodeBlobStore:
    return CodeBlobStore(tmp_path / "blobs", load_or_create_key(tmp_path / "keys" / "code.key"))


def test_round_trip(store: CodeBlobStore) -> None:
    digest = store.put(DATA)
    assert digest == hashlib.sha256(DATA).hexdigest()
    assert store.exists(digest)
    assert store.get(digest) == DATA


def test_blob_is_encrypted_at_its_content_address(store: CodeBlobStore, tmp_path: Path) -> None:
    digest = store.put(DATA)
    path = store.path_for(digest)
    assert path == tmp_path / "blobs" / digest[:2] / digest
    stored = path.read_bytes()
    assert stored.startswith(b"LMB1")
    assert len(stored) == 4 + 12 + len(DATA) + 16
    assert b"deployment package" not in stored
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_empty_blob_round_trips(store: CodeBlobStore) -> None:
    assert store.get(store.put(b"")) == b""


def test_put_is_idempotent(store: CodeBlobStore) -> None:
    digest = store.put(DATA)
    inode = store.path_for(digest).stat().st_ino
    assert store.put(DATA) == digest
    assert store.path_for(digest).stat().st_ino == inode  # not rewritten
    assert list(store.digests()) == [digest]


def test_put_repairs_a_damaged_blob(store: CodeBlobStore) -> None:
    digest = store.put(DATA)
    store.path_for(digest).write_bytes(b"LMB1garbage")
    assert store.put(DATA) == digest
    assert store.get(digest) == DATA


def _flip(path: Path, offset: int) -> None:
    stored = bytearray(path.read_bytes())
    stored[offset] ^= 0x01
    path.write_bytes(bytes(stored))


@pytest.mark.parametrize("offset", [4, 20, -1], ids=["nonce", "ciphertext", "tag"])
def test_tampered_blob_is_refused(
    store: CodeBlobStore, offset: int, caplog: pytest.LogCaptureFixture
) -> None:
    digest = store.put(DATA)
    _flip(store.path_for(digest), offset)
    with (
        caplog.at_level(logging.WARNING, logger="lamina.store.blobs"),
        pytest.raises(CodeIntegrityError, match=f"code blob {digest} failed integrity") as exc,
    ):
        store.get(digest)
    assert "authentication failed" in exc.value.message
    assert digest in caplog.text


def test_bad_magic_is_refused(store: CodeBlobStore) -> None:
    digest = store.put(DATA)
    _flip(store.path_for(digest), 0)
    with pytest.raises(CodeIntegrityError, match="unknown format"):
        store.get(digest)


@pytest.mark.parametrize("keep", [0, 10, 31, 32, -1])
def test_truncated_blob_is_refused(store: CodeBlobStore, keep: int) -> None:
    digest = store.put(DATA)
    path = store.path_for(digest)
    stored = path.read_bytes()
    path.write_bytes(stored[: keep if keep >= 0 else len(stored) + keep])
    with pytest.raises(CodeIntegrityError, match=digest):
        store.get(digest)


def test_missing_blob_is_refused(store: CodeBlobStore) -> None:
    digest = hashlib.sha256(b"never stored").hexdigest()
    with pytest.raises(CodeIntegrityError, match=f"{digest} failed integrity.*missing"):
        store.get(digest)


def test_blob_moved_to_another_digest_is_refused(store: CodeBlobStore) -> None:
    digest = store.put(DATA)
    other = store.put(b"other code")
    shutil.copyfile(store.path_for(digest), store.path_for(other))
    with pytest.raises(CodeIntegrityError, match=other):
        store.get(other)
    assert store.get(digest) == DATA


def test_wrong_key_is_refused(store: CodeBlobStore, tmp_path: Path) -> None:
    digest = store.put(DATA)
    stranger = CodeBlobStore(tmp_path / "blobs", os.urandom(32))
    with pytest.raises(CodeIntegrityError, match="authentication failed"):
        stranger.get(digest)


def test_content_not_matching_its_digest_is_refused(tmp_path: Path) -> None:
    # Encrypt correctly for a digest that is not the content's: only re-hashing catches it.
    key = os.urandom(32)
    store = CodeBlobStore(tmp_path, key)
    digest = store.put(DATA)
    wrong = "0" * 64
    wrong_path = store.path_for(wrong)
    wrong_path.parent.mkdir(parents=True)
    nonce = os.urandom(12)
    wrong_path.write_bytes(b"LMB1" + nonce + AESGCM(key).encrypt(nonce, DATA, wrong.encode()))
    with pytest.raises(CodeIntegrityError, match=f"content hashes to {digest}"):
        store.get(wrong)


def test_delete_is_idempotent(store: CodeBlobStore) -> None:
    digest = store.put(DATA)
    store.delete(digest)
    assert not store.exists(digest)
    store.delete(digest)
    assert list(store.digests()) == []


def test_digests_lists_blobs_only(store: CodeBlobStore) -> None:
    first, second = store.put(b"one"), store.put(b"two")
    leftover = store.path_for(first).with_name(f".{first}.abcd.tmp")
    leftover.write_bytes(b"unfinished write")
    assert sorted(store.digests()) == sorted([first, second])


def test_digests_of_an_empty_store(tmp_path: Path) -> None:
    assert list(CodeBlobStore(tmp_path / "nothing", os.urandom(32)).digests()) == []


@pytest.mark.parametrize(
    "digest",
    ["", "ab", "A" * 64, "g" * 64, "a" * 63, "a" * 65, "../" + "a" * 61, "a" * 64 + "\n"],
)
def test_malformed_digests_are_rejected(store: CodeBlobStore, digest: str) -> None:
    with pytest.raises(ValueError, match="digest"):
        check_digest(digest)
    for operation in (store.get, store.exists, store.delete, store.path_for):
        with pytest.raises(ValueError, match="digest"):
            operation(digest)


def test_store_rejects_a_short_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        CodeBlobStore(tmp_path, b"short")


def test_key_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keys" / "code.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_key(path) == key
    assert [p.name for p in path.parent.iterdir()] == ["code.key"]  # no temporary left
    assert load_or_create_key(tmp_path / "another.key") != key


@pytest.mark.parametrize("size", [0, 16, 33])
def test_key_of_wrong_length_is_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "code.key"
    path.write_bytes(b"k" * size)
    with pytest.raises(CodeIntegrityError, match=f"holds {size} bytes"):
        load_or_create_key(path)
