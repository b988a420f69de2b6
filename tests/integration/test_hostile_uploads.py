"""Hostile deployment packages and requests: the AWS error, and nothing created or stored."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from lamina_support import (
    UNZIP_FAILED,
    UNZIPPED_LIMIT,
    ZIPPED_LIMIT,
    AwsFailure,
    client,
    code_listing,
    create_params,
    expect_failure,
    failure,
    hello_zip,
    incompressible_zip,
    raw_request,
    symlink_entry,
    unique_name,
    wait_active,
    zip_entries,
)

pytestmark = pytest.mark.integration

HANDLER = b"def handler(event, context):\n    return 1\n"
MIB = 1 << 20

Create = Callable[..., dict[str, Any]]


@dataclass
class Guard:
    """Checks that a rejected request left no function and no code behind."""

    lam: Any
    data_dir: Path
    before: set[str]

    def create_fails(self, name: str, **overrides: Any) -> AwsFailure:
        params = create_params(name, **overrides)
        try:
            self.lam.create_function(**params)
        except ClientError as error:
            self.assert_nothing_created(params["FunctionName"])
            return failure(error)
        self.lam.delete_function(FunctionName=params["FunctionName"])
        raise AssertionError(f"CreateFunction accepted a hostile request: {sorted(overrides)}")

    def assert_nothing_created(self, name: str) -> None:
        missing = expect_failure(lambda: self.lam.get_function(FunctionName=name))
        assert (missing.code, missing.status) == ("ResourceNotFoundException", 404)
        assert code_listing(self.data_dir) == self.before


@pytest.fixture
def guard(server: Any) -> Guard:
    lam = client(server.endpoint, validate=False)
    return Guard(lam, server.data_dir, code_listing(server.data_dir))


def lying_sizes_zip() -> bytes:
    """A deflated entry of 4 MiB of zeros whose headers both claim it holds 100 bytes."""
    data = bytearray(zip_entries([("app.py", HANDLER), ("pad.bin", bytes(4 * MIB))], level=9))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("pad.bin")
    local = info.header_offset
    assert data[local : local + 4] == b"PK\x03\x04"
    struct.pack_into("<I", data, local + 22, 100)
    eocd = data.rfind(b"PK\x05\x06")
    central = struct.unpack_from("<I", data, eocd + 16)[0]
    while data[central : central + 4] == b"PK\x01\x02":
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, central + 28)
        name = bytes(data[central + 46 : central + 46 + name_len])
        if name == b"pad.bin":
            struct.pack_into("<I", data, central + 24, 100)
        central += 46 + name_len + extra_len + comment_len
    return bytes(data)


def total_size_bomb() -> bytes:
    """More than 262,144,000 real bytes in 1 MiB entries of zeros (each compresses ~1000:1)."""
    count = UNZIPPED_LIMIT // MIB + 2
    zeros = bytes(MIB)
    entries: list[tuple[zipfile.ZipInfo | str, bytes]] = [("app.py", HANDLER)]
    entries += [(f"data/part{index:04d}.bin", zeros) for index in range(count)]
    data = zip_entries(entries, level=9)
    assert len(data) < 2 * MIB
    return data


HOSTILE_ZIPS: dict[str, Callable[[], bytes]] = {
    "not-a-zip": lambda: b"MZ\x90\x00 this is an executable, not a zip archive" * 10,
    "truncated-zip": lambda: hello_zip("cut")[:-30],
    "dot-dot-traversal": lambda: zip_entries([("app.py", HANDLER), ("../evil.py", b"pwned")]),
    "nested-dot-dot-traversal": lambda: zip_entries(
        [("app.py", HANDLER), ("lib/../../../evil.py", b"pwned")]
    ),
    "absolute-path": lambda: zip_entries([("app.py", HANDLER), ("/tmp/lamina-evil.py", b"x")]),
    "symlink-absolute": lambda: zip_entries(
        [("app.py", HANDLER), symlink_entry("passwd", "/etc/passwd")]
    ),
    "symlink-escaping": lambda: zip_entries(
        [("app.py", HANDLER), symlink_entry("escape", "../../x")]
    ),
    "symlink-escaping-from-subdir": lambda: zip_entries(
        [("app.py", HANDLER), symlink_entry("sub/dir/link", "../../../outside")]
    ),
    "lying-sizes": lying_sizes_zip,
    "ratio-bomb": lambda: zip_entries([("app.py", HANDLER), ("zeros.bin", bytes(64 * MIB))], 9),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip_is_rejected_on_create(guard: Guard, case: str) -> None:
    name = unique_name(case[:20])
    failed = guard.create_fails(name, Code={"ZipFile": HOSTILE_ZIPS[case]()})
    assert failed.code == "InvalidParameterValueException", failed
    assert failed.status == 400
    assert failed.message
    if case in ("not-a-zip", "truncated-zip"):
        assert failed.message == UNZIP_FAILED


def test_total_size_zip_bomb_is_rejected(guard: Guard) -> None:
    name = unique_name("bomb")
    failed = guard.create_fails(name, Code={"ZipFile": total_size_bomb()})
    assert failed.code == "InvalidParameterValueException"
    assert failed.status == 400
    assert failed.message == "Unzipped size must be smaller than 262144000 bytes"


def test_zip_over_50mb_is_rejected_with_413(guard: Guard) -> None:
    name = unique_name("toolarge")
    failed = guard.create_fails(name, Code={"ZipFile": incompressible_zip(ZIPPED_LIMIT + 1000)})
    assert failed.code == "RequestEntityTooLargeException"
    assert failed.status == 413
    assert failed.message == "Zipped size must be smaller than 52428800 bytes"


@pytest.mark.parametrize(
    ("field", "overrides"),
    [
        ("description", {"Description": "x" * 257}),
        ("handler", {"Handler": "h" * 129}),
    ],
)
def test_oversized_fields_are_rejected(guard: Guard, field: str, overrides: dict[str, Any]) -> None:
    name = unique_name(field)
    failed = guard.create_fails(name, **overrides)
    assert failed.code == "ValidationException"
    assert failed.status == 400
    assert failed.message.startswith("1 validation error detected: Value '")
    expected = f"at '{field}' failed to satisfy constraint: Member must have length less than"
    assert expected in failed.message


@pytest.mark.parametrize(
    "body_of",
    [
        lambda name: b'{"FunctionName": "' + name.encode() + b'", "Runtime": "python3.11", ',
        lambda name: b'{"FunctionName": "' + name.encode() + b'"}}}',
        lambda name: json.dumps({"FunctionName": name, "MemorySize": "128"}).encode(),
    ],
    ids=["truncated", "trailing-garbage", "wrong-type"],
)
def test_malformed_json_is_rejected(
    server: Any, guard: Guard, body_of: Callable[[str], bytes]
) -> None:
    name = unique_name("malformed")
    raw = raw_request(server.endpoint, "POST", "/2015-03-31/functions", body=body_of(name))
    assert raw.status == 400
    assert raw.error_type == "InvalidRequestContentException"
    guard.assert_nothing_created(name)


@pytest.mark.parametrize(
    "case", ["not-a-zip", "dot-dot-traversal", "symlink-absolute", "ratio-bomb"]
)
def test_hostile_zip_is_rejected_on_update(
    server: Any, lambda_client: Any, create_function: Create, function_name: str, case: str
) -> None:
    original = hello_zip("original")
    create_function(function_name, Code={"ZipFile": original})
    before_config = wait_active(lambda_client, function_name)
    before = code_listing(server.data_dir)

    failed = expect_failure(
        lambda: lambda_client.update_function_code(
            FunctionName=function_name, ZipFile=HOSTILE_ZIPS[case]()
        )
    )
    assert (failed.code, failed.status) == ("InvalidParameterValueException", 400)
    after_config = lambda_client.get_function_configuration(FunctionName=function_name)
    assert after_config["CodeSha256"] == before_config["CodeSha256"]
    assert after_config["RevisionId"] == before_config["RevisionId"]
    assert code_listing(server.data_dir) == before


def test_update_over_50mb_is_413_and_keeps_code(
    server: Any, lambda_client: Any, create_function: Create, function_name: str
) -> None:
    created = create_function(function_name)
    wait_active(lambda_client, function_name)
    before = code_listing(server.data_dir)
    failed = expect_failure(
        lambda: lambda_client.update_function_code(
            FunctionName=function_name, ZipFile=incompressible_zip(ZIPPED_LIMIT + 1000)
        )
    )
    assert (failed.code, failed.status) == ("RequestEntityTooLargeException", 413)
    config = lambda_client.get_function_configuration(FunctionName=function_name)
    assert config["CodeSha256"] == created["CodeSha256"]
    assert code_listing(server.data_dir) == before


def test_safe_package_with_internal_symlink_is_accepted_read_only(
    server: Any, lambda_client: Any, create_function: Create, function_name: str
) -> None:
    """The positive control: a nested, symlinked package inside its root is fine."""
    package = zip_entries(
        [
            ("app.py", HANDLER),
            ("pkg/__init__.py", b""),
            ("pkg/mod.py", b"VALUE = 1\n"),
            symlink_entry("pkg/alias.py", "mod.py"),
            symlink_entry("top.py", "pkg/../app.py"),
        ]
    )
    create_function(function_name, Code={"ZipFile": package})
    wait_active(lambda_client, function_name)
    digest = hashlib.sha256(package).hexdigest()
    tree = server.data_dir / "code" / digest
    assert (server.data_dir / "blobs" / digest[:2] / digest).is_file()
    assert (tree / "pkg" / "mod.py").read_bytes() == b"VALUE = 1\n"
    assert os.readlink(tree / "pkg" / "alias.py") == "mod.py"
    assert (tree / "top.py").read_bytes() == HANDLER
    for path in (tree / "app.py", tree / "pkg" / "mod.py", tree / "pkg", tree):
        assert not stat.S_IMODE(path.stat().st_mode) & 0o222, path
    # The blob at rest is encrypted: it does not contain the zip's bytes.
    blob = (server.data_dir / "blobs" / digest[:2] / digest).read_bytes()
    assert package not in blob
    assert b"VALUE = 1" not in blob
