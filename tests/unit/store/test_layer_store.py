"""LayerStore: numbering, tombstones, policies, and what counts as code in use."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from lamina.model.function import (
    LATEST,
    CodeRef,
    Function,
    FunctionConfig,
    FunctionVersion,
    State,
    Status,
)
from lamina.model.layer import LayerPolicy, LayerStatement, LayerVersion, parse_layer_arn
from lamina.store.layers import LayerStore
from lamina.store.sqlite import SqliteStore

T = TypeVar("T")
ACCOUNT = "000000000000"
REGION = "us-east-1"
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def maker(name: str, sha: str, runtimes: tuple[str, ...] = ()) -> Any:
    def make(number: int) -> LayerVersion:
        return LayerVersion(REGION, name, number, CodeRef(sha, 10, 20), WHEN, "d", runtimes)

    return make


@pytest.fixture
def stores(tmp_path: Path) -> tuple[SqliteStore, LayerStore]:
    functions = SqliteStore(tmp_path / "state.db")
    return functions, LayerStore(functions.database)


def function_using(layers: tuple[str, ...], sha: str = "ff" * 32) -> Function:
    config = FunctionConfig("python3.11", "app.handler", "arn:aws:iam::0:role/r", layers=layers)
    version = FunctionVersion(
        LATEST, config, CodeRef(sha, 1, 1), Status(State.ACTIVE), WHEN, str(uuid.uuid4())
    )
    return Function(REGION, "fn", version)


def test_versions_number_on_and_survive_deletion(stores: tuple[SqliteStore, LayerStore]) -> None:
    _, layers = stores
    first = run(layers.publish(REGION, "lib", ACCOUNT, maker("lib", "aa" * 32, ("python3.11",))))
    run(layers.publish(REGION, "lib", ACCOUNT, maker("lib", "bb" * 32)))
    assert first.version == 1
    assert run(layers.get(REGION, "lib", 1)) == first
    assert [v.version for v in run(layers.versions(REGION, "lib"))] == [2, 1]
    assert run(layers.delete(REGION, "lib", 1)) == first
    assert run(layers.delete(REGION, "lib", 1)) is None
    assert run(layers.get(REGION, "lib", 1)) is None
    assert run(layers.get(REGION, "lib", 1, deleted_too=True)) == first
    assert [v.version for v in run(layers.versions(REGION, "lib"))] == [2]
    third = run(layers.publish(REGION, "lib", ACCOUNT, maker("lib", "cc" * 32)))
    assert third.version == 3
    assert run(layers.usage(REGION)) == 20
    assert run(layers.get("eu-west-1", "lib", 2)) is None


def test_policy_changes_atomically(stores: tuple[SqliteStore, LayerStore]) -> None:
    _, layers = stores
    run(layers.publish(REGION, "lib", ACCOUNT, maker("lib", "aa" * 32)))
    assert run(layers.policy(REGION, "lib", 1)) is None
    statement = LayerStatement("s1", "lambda:GetLayerVersion", "*")
    written = run(layers.change_policy(REGION, "lib", 1, lambda _: LayerPolicy("r1", (statement,))))
    assert run(layers.policy(REGION, "lib", 1)) == written

    def refuse(_: LayerPolicy | None) -> LayerPolicy | None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        run(layers.change_policy(REGION, "lib", 1, refuse))
    assert run(layers.policy(REGION, "lib", 1)) == written
    with pytest.raises(LookupError):
        run(layers.change_policy(REGION, "lib", 2, lambda p: p))
    run(layers.delete(REGION, "lib", 1))
    assert run(layers.policy(REGION, "lib", 1)) is None


def test_code_in_use_counts_live_and_referenced_layers(
    stores: tuple[SqliteStore, LayerStore],
) -> None:
    functions, layers = stores
    one = run(layers.publish(REGION, "lib", ACCOUNT, maker("lib", "aa" * 32)))
    ten = [
        run(layers.publish(REGION, "lib", ACCOUNT, maker("lib", f"{n:02x}" * 32))) for n in range(9)
    ]
    assert ten[-1].version == 10
    assert run(functions.code_in_use("aa" * 32))
    run(layers.delete(REGION, "lib", 1))
    assert not run(functions.code_in_use("aa" * 32))
    # A function naming version 10 does not keep version 1's code ...
    run(functions.create_function(function_using((ten[-1].arn(ACCOUNT),))))
    assert not run(functions.code_in_use("aa" * 32))
    # ... one naming version 1 does, deleted or not.
    run(
        functions.update_function(
            REGION,
            "fn",
            lambda f: dataclasses.replace(f, latest=function_using((one.arn(ACCOUNT),)).latest),
        )
    )
    assert run(functions.code_in_use("aa" * 32))
    run(functions.delete_function(REGION, "fn"))
    assert not run(functions.code_in_use("aa" * 32))


def test_layer_arns_parse() -> None:
    parsed = parse_layer_arn(f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:my-lib_2:7")
    assert parsed is not None
    assert (parsed.region, parsed.account, parsed.name, parsed.version) == (
        REGION,
        ACCOUNT,
        "my-lib_2",
        7,
    )
    assert parsed.layer_arn == f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:my-lib_2"
    unversioned = parse_layer_arn(f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:lib")
    assert unversioned is not None
    assert unversioned.version is None
    assert parse_layer_arn("arn:aws:lambda:::awslayer:x") is None
    assert parse_layer_arn("lib") is None
