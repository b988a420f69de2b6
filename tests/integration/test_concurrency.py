"""Reserved concurrency, the account's concurrency limit, the per-function scaling rate and
GetAccountSettings' figures, through boto3 against live servers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from lamina_support import (
    REGION,
    create_params,
    expect_failure,
    function_arn,
    make_zip,
    poll,
    start_server,
    unique_name,
    wait_active,
)

pytestmark = pytest.mark.integration

Create = Callable[..., dict[str, Any]]
SLEEPER = make_zip(
    {
        "app.py": "import os, time\n"
        "def handler(event, context):\n"
        "    time.sleep(event.get('sleep', 0))\n"
        "    return os.environ['AWS_LAMBDA_INITIALIZATION_TYPE']\n"
    }
)
QUALIFIED = (
    "This operation is permitted on Lambda functions only. Aliases and versions do not support "
    "this operation. Please specify either a function name or an unqualified function ARN."
)
BELOW_MINIMUM = (
    "Specified ReservedConcurrentExecutions for function decreases account's "
    "UnreservedConcurrentExecution below its minimum value of [100]."
)


# --- helpers -------------------------------------------------------------------------------------


def wide_client(endpoint: str) -> Any:
    """A client whose connection pool lets 128 invocations run at once."""
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            retries={"max_attempts": 0, "mode": "standard"},
            read_timeout=120,
            max_pool_connections=128,
        ),
    )


def deploy(lam: Any, create: Create | None = None) -> str:
    name = unique_name()
    params = create_params(name, SLEEPER, Timeout=30)
    if create is not None:
        params.pop("FunctionName")
        create(name, **params)
    else:
        lam.create_function(**params)
    wait_active(lam, name)
    return name


def invoke_together(lam: Any, name: str, count: int, sleep: float) -> list[Any]:
    """`count` invocations released at once; each result is the payload or the ClientError."""
    barrier = threading.Barrier(count)

    def one(_: int) -> Any:
        barrier.wait()
        try:
            response = lam.invoke(FunctionName=name, Payload=f'{{"sleep": {sleep}}}'.encode())
            return response["Payload"].read()
        except ClientError as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def throttles(results: list[Any]) -> list[Any]:
    """The throttled invocations' error responses (anything else must have succeeded)."""
    found: list[Any] = []
    for result in results:
        if isinstance(result, ClientError):
            found.append(result.response)
        else:
            assert result == b'"on-demand"', result
    return found


def assert_throttled(response: Any, reason: str) -> None:
    assert response["Error"]["Code"] == "TooManyRequestsException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert response["Error"]["Message"] == "Rate Exceeded."
    assert response["Reason"] == reason
    assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"


# --- reserved concurrency (session server) -------------------------------------------------------


def test_reserved_concurrency_admits_exactly_that_many(
    lambda_client: Any, create_function: Create
) -> None:
    name = deploy(lambda_client, create_function)
    answer = lambda_client.put_function_concurrency(
        FunctionName=name, ReservedConcurrentExecutions=2
    )
    assert answer["ReservedConcurrentExecutions"] == 2
    results = invoke_together(lambda_client, name, 3, sleep=2.0)
    throttled = throttles(results)
    assert len(throttled) == 1, results
    assert_throttled(throttled[0], "ReservedFunctionConcurrentInvocationLimitExceeded")
    # Capacity comes back as invocations finish.
    assert throttles(invoke_together(lambda_client, name, 2, sleep=0.1)) == []


def test_reserved_zero_throttles_everything(lambda_client: Any, create_function: Create) -> None:
    name = deploy(lambda_client, create_function)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    try:
        lambda_client.invoke(FunctionName=name)
    except ClientError as error:
        assert_throttled(error.response, "ReservedFunctionConcurrentInvocationLimitExceeded")
    else:
        raise AssertionError("an invocation of a function reserved at 0 ran")
    lambda_client.delete_function_concurrency(FunctionName=name)
    assert lambda_client.invoke(FunctionName=name)["Payload"].read() == b'"on-demand"'


def test_get_put_delete_and_get_function(lambda_client: Any, create_function: Create) -> None:
    name = deploy(lambda_client, create_function)
    assert "ReservedConcurrentExecutions" not in lambda_client.get_function_concurrency(
        FunctionName=name
    )
    assert "Concurrency" not in lambda_client.get_function(FunctionName=name)

    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=7)
    got = lambda_client.get_function_concurrency(FunctionName=function_arn(name))
    assert got["ReservedConcurrentExecutions"] == 7
    described = lambda_client.get_function(FunctionName=name)
    assert described["Concurrency"] == {"ReservedConcurrentExecutions": 7}

    deleted = lambda_client.delete_function_concurrency(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in lambda_client.get_function_concurrency(
        FunctionName=name
    )
    assert "Concurrency" not in lambda_client.get_function(FunctionName=name)


def test_qualified_and_missing_functions(lambda_client: Any, create_function: Create) -> None:
    name = deploy(lambda_client, create_function)
    for qualified in (f"{name}:1", f"{function_arn(name)}:$LATEST"):
        for call in (
            partial(
                lambda_client.put_function_concurrency,
                FunctionName=qualified,
                ReservedConcurrentExecutions=1,
            ),
            partial(lambda_client.get_function_concurrency, FunctionName=qualified),
            partial(lambda_client.delete_function_concurrency, FunctionName=qualified),
        ):
            failure = expect_failure(call)
            assert (failure.code, failure.status) == ("InvalidParameterValueException", 400)
            assert failure.message == QUALIFIED
    missing = unique_name()
    failure = expect_failure(
        lambda: lambda_client.put_function_concurrency(
            FunctionName=missing, ReservedConcurrentExecutions=1
        )
    )
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
    assert failure.message == f"Function not found: {function_arn(missing)}"
    failure = expect_failure(lambda: lambda_client.get_function_concurrency(FunctionName=missing))
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)


# --- the account's pool (a server with a small limit) --------------------------------------------


@pytest.fixture(scope="module")
def small_account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    live = start_server(
        tmp_path_factory.mktemp("small-account"), env={"LAMINA_CONCURRENCY_LIMIT": "150"}
    )
    yield live
    live.stop()


def account_limit(lam: Any) -> tuple[int, int]:
    limit = lam.get_account_settings()["AccountLimit"]
    return limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]


def test_account_settings_and_the_100_unreserved_rule(small_account: Any) -> None:
    lam = wide_client(small_account.endpoint)
    assert account_limit(lam) == (150, 150)
    first, second = deploy(lam), deploy(lam)

    failure = expect_failure(
        lambda: lam.put_function_concurrency(FunctionName=first, ReservedConcurrentExecutions=51)
    )
    assert (failure.code, failure.status) == ("InvalidParameterValueException", 400)
    assert failure.message == BELOW_MINIMUM
    lam.put_function_concurrency(FunctionName=first, ReservedConcurrentExecutions=50)
    assert account_limit(lam) == (150, 100)
    failure = expect_failure(
        lambda: lam.put_function_concurrency(FunctionName=second, ReservedConcurrentExecutions=1)
    )
    assert failure.message == BELOW_MINIMUM
    # Changing a reservation replaces it: it is not counted twice.
    lam.put_function_concurrency(FunctionName=first, ReservedConcurrentExecutions=30)
    assert account_limit(lam) == (150, 120)

    # Deleting a function gives its reservation back (its settings go with it).
    lam.delete_function(FunctionName=first)
    assert poll(lambda: account_limit(lam), lambda limits: limits == (150, 150)) == (150, 150)
    lam.delete_function(FunctionName=second)


def test_account_limit_throttles_unreserved_functions(small_account: Any) -> None:
    lam = wide_client(small_account.endpoint)
    reserved, shared = deploy(lam), deploy(lam)
    lam.put_function_concurrency(FunctionName=reserved, ReservedConcurrentExecutions=50)
    try:
        # 100 unreserved: the 101st concurrent invocation of an unreserved function is refused.
        throttled = throttles(invoke_together(lam, shared, 101, sleep=4.0))
        assert len(throttled) == 1
        assert_throttled(throttled[0], "ConcurrentInvocationLimitExceeded")
        # The reserved function's capacity was never the shared pool's.
        assert throttles(invoke_together(lam, reserved, 3, sleep=0.1)) == []
    finally:
        lam.delete_function(FunctionName=reserved)
        lam.delete_function(FunctionName=shared)


# --- the scaling rate ----------------------------------------------------------------------------


def test_scaling_rate_limits_new_environments(tmp_path: Path) -> None:
    live = start_server(tmp_path / "d", env={"LAMINA_SCALING_RATE": "1"})
    try:
        lam = wide_client(live.endpoint)
        name = deploy(lam)
        # One new environment per 10 s: the first starts, a second at the same time may not.
        throttled = throttles(invoke_together(lam, name, 2, sleep=1.0))
        assert len(throttled) == 1
        assert_throttled(throttled[0], "FunctionInvocationRateLimitExceeded")
        # A warm environment needs no new one.
        assert lam.invoke(FunctionName=name)["Payload"].read() == b'"on-demand"'
    finally:
        live.stop()
