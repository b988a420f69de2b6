"""SqliteStore: the Store contract, migrations and atomic read-modify-write."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lamina.errors import FunctionExists, FunctionNotFound
from lamina.model.function import (
    LATEST,
    CodeRef,
    Function,
    FunctionConfig,
    FunctionVersion,
    State,
    Status,
)
from lamina.store.migrations import MIGRATIONS
from lamina.store.protocol import Published
from lamina.store.sqlite import SqliteStore


def version(number: str = LATEST, sha: str = "ab" * 32, memory: int = 128) -> FunctionVersion:
    config = FunctionConfig(
        "python3.11", "app.handler", "arn:aws:iam::000000000000:role/r", memory_size=memory
    )
    return FunctionVersion(
        number,
        config,
        CodeRef(sha, 10, 20),
        Status(State.PENDING, "creating", "Creating"),
        datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
        str(uuid.uuid4()),
    )


def function(name: str = "f", region: str = "us-east-1", **tags: str) -> Function:
    return Function(region, name, version(), tags)


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    return SqliteStore(tmp_path / "state.db")


T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_round_trip_preserves_every_field(store: SqliteStore) -> None:
    original = function(team="a")
    run(store.create_function(original))
    loaded = run(store.get_function("us-east-1", "f"))
    assert loaded is not None
    assert loaded.tags == {"team": "a"}
    assert loaded.latest.config == original.latest.config
    assert loaded.latest.status == original.latest.status
    assert loaded.latest.code == original.latest.code
    assert loaded.latest.last_modified == original.latest.last_modified
    assert loaded.latest.revision_id == original.latest.revision_id


def test_duplicate_name_conflicts_but_regions_are_separate(store: SqliteStore) -> None:
    run(store.create_function(function()))
    with pytest.raises(FunctionExists):
        run(store.create_function(function()))
    run(store.create_function(function(region="eu-west-1")))
    assert run(store.usage("us-east-1"))[0] == 1
    assert run(store.usage("eu-west-1"))[0] == 1


def test_list_pages_in_name_order(store: SqliteStore) -> None:
    for name in ["c", "a", "b", "d"]:
        run(store.create_function(function(name)))
    assert [f.name for f in run(store.list_functions("us-east-1", None, 2))] == ["a", "b"]
    assert [f.name for f in run(store.list_functions("us-east-1", "b", 10))] == ["c", "d"]


def test_update_is_atomic_and_aborts_on_exception(store: SqliteStore) -> None:
    run(store.create_function(function()))

    def failing(fn: Function) -> Function:
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        run(store.update_function("us-east-1", "f", failing))
    loaded = run(store.get_function("us-east-1", "f"))
    assert loaded is not None
    assert loaded.latest.config.memory_size == 128

    def bigger(fn: Function) -> Function:
        config = dataclasses.replace(fn.latest.config, memory_size=256)
        return dataclasses.replace(fn, latest=dataclasses.replace(fn.latest, config=config))

    run(store.update_function("us-east-1", "f", bigger))
    loaded = run(store.get_function("us-east-1", "f"))
    assert loaded is not None
    assert loaded.latest.config.memory_size == 256
    with pytest.raises(FunctionNotFound):
        run(store.update_function("us-east-1", "missing", bigger))


def test_versions_are_numbered_and_never_reused(store: SqliteStore) -> None:
    run(store.create_function(function()))
    first = run(
        store.publish_version(
            "us-east-1", "f", lambda f, prev, n: Published(version(str(n)), f.latest)
        )
    )
    second = run(
        store.publish_version(
            "us-east-1", "f", lambda f, prev, n: Published(version(str(n)), f.latest)
        )
    )
    assert (first.version, second.version) == ("1", "2")
    same = run(store.publish_version("us-east-1", "f", lambda f, prev, n: None))
    assert same.version == "2"
    run(store.delete_version("us-east-1", "f", "2"))
    third = run(
        store.publish_version(
            "us-east-1", "f", lambda f, prev, n: Published(version(str(n)), f.latest)
        )
    )
    assert third.version == "3"
    versions = run(store.list_versions("us-east-1", "f"))
    assert [v.version for v in versions] == [LATEST, "1", "3"]


def test_publishing_stores_latest_as_it_leaves_it(store: SqliteStore) -> None:
    """One transaction writes the version and `$LATEST` (its new RevisionId)."""
    run(store.create_function(function()))
    renewed = dataclasses.replace(function().latest, revision_id="after-publish")
    run(
        store.publish_version("us-east-1", "f", lambda f, prev, n: Published(version("1"), renewed))
    )
    loaded = run(store.get_function("us-east-1", "f"))
    assert loaded is not None
    assert loaded.latest.revision_id == "after-publish"
    run(store.publish_version("us-east-1", "f", lambda f, prev, n: None))  # nothing changed
    again = run(store.get_function("us-east-1", "f"))
    assert again is not None
    assert again.latest.revision_id == "after-publish"


def test_code_references_follow_versions_and_deletion(store: SqliteStore) -> None:
    run(store.create_function(function()))
    assert run(store.code_in_use("ab" * 32))
    run(
        store.publish_version(
            "us-east-1", "f", lambda f, prev, n: Published(version(str(n), "cd" * 32), f.latest)
        )
    )
    assert run(store.code_in_use("cd" * 32))
    assert run(store.delete_function("us-east-1", "f")) is not None
    assert not run(store.code_in_use("ab" * 32))
    assert not run(store.code_in_use("cd" * 32))  # versions cascade with the function
    assert run(store.delete_function("us-east-1", "f")) is None


def test_state_survives_reopening_and_schema_is_current(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    first = SqliteStore(path)
    run(first.create_function(function()))
    run(first.close())
    second = SqliteStore(path)
    assert second.schema_version == len(MIGRATIONS)
    assert run(second.get_function("us-east-1", "f")) is not None
    assert run(second.functions_in_state(State.PENDING))[0].name == "f"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
