"""Provisioned concurrency: configs on versions and aliases, environments initialized ahead
(no init in REPORT, AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency), spill-over,
scaling up and down, survival across a restart, and nothing left behind."""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from host_probes import group_members, memory_group, named
from lamina_support import (
    LAST_MODIFIED_RE,
    client,
    create_params,
    expect_failure,
    function_arn,
    make_zip,
    poll,
    start_server,
    unique_name,
    wait_active,
    wait_updated,
)

pytestmark = pytest.mark.integration

INIT_DURATION = "\tInit Duration: "
# Init renames the runtime process to the MARKER variable (at most 15 bytes) so that the host
# can count a function's environments.
SOURCE = """\
import ctypes, os, time

if os.environ.get("MARKER"):
    ctypes.CDLL(None).prctl(15, os.environ["MARKER"].encode(), 0, 0, 0)


def handler(event, context):
    time.sleep(event.get("sleep", 0))
    return {"type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"], "pid": os.getpid()}
"""
UNPUBLISHED = "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
NOT_PUBLISHED = "The function resource provided must be an alias or a published version."


# --- helpers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_server(tmp_path_factory.mktemp("provisioned"))
    yield server
    server.stop()


@pytest.fixture
def lam(live: Any) -> Any:
    return client(live.endpoint)


def deploy(lam: Any) -> tuple[str, str, str]:
    """(name, published version, marker) of a new function."""
    name, marker = unique_name(), "pc" + uuid.uuid4().hex[:12]
    params = create_params(name, make_zip({"app.py": SOURCE}), Timeout=30)
    lam.create_function(**params, Environment={"Variables": {"MARKER": marker}})
    wait_active(lam, name)
    return name, lam.publish_version(FunctionName=name)["Version"], marker


def invoke(lam: Any, name: str, qualifier: str | None = None, sleep: float = 0) -> tuple[Any, str]:
    """(payload, log tail) of a RequestResponse invoke."""
    params: dict[str, Any] = {"FunctionName": name, "LogType": "Tail"}
    if qualifier is not None:
        params["Qualifier"] = qualifier
    response = lam.invoke(**params, Payload=json.dumps({"sleep": sleep}).encode())
    assert "FunctionError" not in response, response
    return json.loads(response["Payload"].read()), base64.b64decode(response["LogResult"]).decode()


def report(log: str) -> str:
    lines = log.splitlines()
    assert lines, log
    assert lines[-1].startswith("REPORT RequestId: "), log
    return lines[-1]


def config(lam: Any, name: str, qualifier: str) -> dict[str, Any]:
    found: dict[str, Any] = lam.get_provisioned_concurrency_config(
        FunctionName=name, Qualifier=qualifier
    )
    return found


def wait_ready(lam: Any, name: str, qualifier: str, count: int) -> dict[str, Any]:
    found = poll(
        lambda: config(lam, name, qualifier),
        lambda c: (
            c["Status"] != "IN_PROGRESS" and c["AvailableProvisionedConcurrentExecutions"] == count
        ),
        timeout=30,
    )
    assert found["Status"] == "READY", found
    return found


def processes_of(pids: list[int]) -> dict[str, set[tuple[int, str]]]:
    """Every process in the cgroups of these environments, as (pid, start time) per group."""
    groups = {group for group in map(memory_group, pids) if group is not None}
    found = {group: set(group_members(group).items()) for group in groups}
    assert found
    assert all(found.values())
    return found


def still_running(processes: dict[str, set[tuple[int, str]]]) -> set[tuple[int, str]]:
    """Those of `processes` still in their cgroups. By (pid, start time): a released cgroup goes
    back to the pool, and a new stem's processes may be in it moments later."""
    return {
        member
        for group, members in processes.items()
        for member in members & set(group_members(group).items())
    }


def count_environments(marker: str, expected: int) -> int:
    return len(poll(lambda: named(marker), lambda found: len(found) == expected, 20))


# --- on a version ------------------------------------------------------------------------------


def test_version_config_becomes_ready_and_serves_without_init(lam: Any) -> None:
    name, version, marker = deploy(lam)
    put = lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 2
    assert put["AvailableProvisionedConcurrentExecutions"] == 0
    assert put["AllocatedProvisionedConcurrentExecutions"] == 0
    assert put["Status"] == "IN_PROGRESS"
    assert re.fullmatch(LAST_MODIFIED_RE, put["LastModified"]), put["LastModified"]

    ready = wait_ready(lam, name, version, 2)
    assert ready["RequestedProvisionedConcurrentExecutions"] == 2
    assert ready["AllocatedProvisionedConcurrentExecutions"] == 2
    assert ready["LastModified"] == put["LastModified"]
    assert "StatusReason" not in ready
    assert count_environments(marker, 2) == 2  # initialized before any invocation

    body, log = invoke(lam, name, version)
    assert body["type"] == "provisioned-concurrency"
    assert INIT_DURATION not in report(log), log
    assert f"Version: {version}\n" in log

    # $LATEST has no config: on demand, with its init in REPORT.
    body, log = invoke(lam, name)
    assert body["type"] == "on-demand"
    assert INIT_DURATION in report(log)

    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)
    assert listed["ProvisionedConcurrencyConfigs"] == [
        {
            "FunctionArn": f"{function_arn(name)}:{version}",
            "RequestedProvisionedConcurrentExecutions": 2,
            "AvailableProvisionedConcurrentExecutions": 2,
            "AllocatedProvisionedConcurrentExecutions": 2,
            "Status": "READY",
            "LastModified": put["LastModified"],
        }
    ]
    lam.delete_function(FunctionName=name)


def test_spill_over_runs_on_demand(lam: Any) -> None:
    name, version, _ = deploy(lam)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    wait_ready(lam, name, version, 1)
    barrier = threading.Barrier(2)

    def one(_: int) -> tuple[Any, str]:
        barrier.wait()
        return invoke(lam, name, version, sleep=1.0)

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(one, range(2)))
    kinds = sorted((body["type"], INIT_DURATION in report(log)) for body, log in results)
    assert kinds == [("on-demand", True), ("provisioned-concurrency", False)], results
    lam.delete_function(FunctionName=name)


def test_scaling_up_down_and_deleting(live: Any, lam: Any) -> None:
    name, version, marker = deploy(lam)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    wait_ready(lam, name, version, 1)
    assert count_environments(marker, 1) == 1

    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=3
    )
    wait_ready(lam, name, version, 3)
    assert count_environments(marker, 3) == 3

    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    wait_ready(lam, name, version, 2)
    assert count_environments(marker, 2) == 2

    processes = processes_of(named(marker))
    deleted = lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert count_environments(marker, 0) == 0
    # every process of those environments went with them
    assert poll(partial(still_running, processes), lambda left: not left, 15) == set()
    failure = expect_failure(lambda: config(lam, name, version))
    assert (failure.code, failure.status) == ("ProvisionedConcurrencyConfigNotFoundException", 404)
    assert failure.message == "No Provisioned Concurrency Config found for this function"
    # Deleting again is not an error (AWS's delete is idempotent).
    lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)

    # Invocations of the version now run on demand.
    body, log = invoke(lam, name, version)
    assert body["type"] == "on-demand"
    assert INIT_DURATION in report(log)
    lam.delete_function(FunctionName=name)


def test_deleting_the_function_removes_its_environments(lam: Any) -> None:
    name, version, marker = deploy(lam)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    wait_ready(lam, name, version, 2)
    pids = named(marker)
    assert len(pids) == 2
    processes = processes_of(pids)
    before = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]

    lam.delete_function(FunctionName=name)
    assert count_environments(marker, 0) == 0
    assert poll(partial(still_running, processes), lambda left: not left, 15) == set()
    after = poll(
        lambda: lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"],
        lambda unreserved: unreserved == before + 2,
    )
    assert after == before + 2


def test_updating_latest_keeps_a_version_provisioned(lam: Any) -> None:
    name, version, marker = deploy(lam)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    wait_ready(lam, name, version, 1)
    pids = named(marker)
    lam.update_function_configuration(FunctionName=name, Description="changed")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    assert config(lam, name, version)["Status"] == "READY"
    assert named(marker) == pids  # the very same environment
    body, log = invoke(lam, name, version)
    assert body["type"] == "provisioned-concurrency"
    assert INIT_DURATION not in report(log)
    lam.delete_function(FunctionName=name)


def test_failing_init_reports_failed(lam: Any) -> None:
    name = unique_name()
    code = make_zip({"app.py": "raise RuntimeError('no init for you')\n"})
    lam.create_function(**create_params(name, code))
    wait_active(lam, name)
    version = lam.publish_version(FunctionName=name)["Version"]
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    found = poll(lambda: config(lam, name, version), lambda c: c["Status"] != "IN_PROGRESS")
    assert found["Status"] == "FAILED", found
    assert found["AvailableProvisionedConcurrentExecutions"] == 0
    assert "no init for you" in found["StatusReason"], found
    lam.delete_function(FunctionName=name)


# --- rules ---------------------------------------------------------------------------------------


def test_latest_missing_and_limits(lam: Any) -> None:
    name, version, _ = deploy(lam)
    failure = expect_failure(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1
        )
    )
    assert (failure.code, failure.status, failure.message) == (
        "InvalidParameterValueException",
        400,
        UNPUBLISHED,
    )
    for call in (
        lambda: config(lam, name, "$LATEST"),
        lambda: lam.delete_provisioned_concurrency_config(FunctionName=name, Qualifier="$LATEST"),
    ):
        failure = expect_failure(call)
        assert (failure.code, failure.message) == ("InvalidParameterValueException", NOT_PUBLISHED)

    failure = expect_failure(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="42", ProvisionedConcurrentExecutions=1
        )
    )
    assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
    assert failure.message == f"Function not found: {function_arn(name)}:42"
    # An alias qualifier is looked up first, even of a missing function (LocalStack's AWS
    # snapshot test_provisioned_concurrency_exceptions: "Cannot find alias arn").
    missing = unique_name("missing")
    for call in (
        lambda: config(lam, missing, "noalias"),
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName=missing, Qualifier="noalias", ProvisionedConcurrentExecutions=1
        ),
    ):
        failure = expect_failure(call)
        assert (failure.code, failure.status) == ("ResourceNotFoundException", 404)
        assert failure.message == f"Cannot find alias arn: {function_arn(missing)}:noalias"
    failure = expect_failure(lambda: config(lam, name, version))
    assert failure.code == "ProvisionedConcurrencyConfigNotFoundException"

    # Provisioned concurrency comes out of the reservation when there is one...
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=2)
    failure = expect_failure(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=3
        )
    )
    assert failure.code == "InvalidParameterValueException"
    assert failure.message == (
        "Requested Provisioned Concurrency should not be greater than the "
        "reservedConcurrentExecution for function"
    )
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2
    )
    failure = expect_failure(
        lambda: lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    )
    assert failure.code == "InvalidParameterValueException"
    # ...and from the account's unreserved pool when there is none (100 must stay).
    lam.delete_function_concurrency(FunctionName=name)
    unreserved = lam.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    failure = expect_failure(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=unreserved - 97
        )
    )
    assert failure.code == "InvalidParameterValueException"
    assert "below its minimum value of [100]" in failure.message
    lam.delete_function(FunctionName=name)


def test_alias_config_provisions_the_alias_version(lam: Any) -> None:
    name, version, marker = deploy(lam)
    lam.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1
    )
    wait_ready(lam, name, "live", 1)
    assert count_environments(marker, 1) == 1
    body, log = invoke(lam, name, "live")
    assert body["type"] == "provisioned-concurrency"
    assert INIT_DURATION not in report(log)
    # The version itself is already provisioned through the alias.
    failure = expect_failure(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
        )
    )
    assert (failure.code, failure.status) == ("ResourceConflictException", 409)
    listed = lam.list_provisioned_concurrency_configs(FunctionName=name)
    arns = [c["FunctionArn"] for c in listed["ProvisionedConcurrencyConfigs"]]
    assert arns == [f"{function_arn(name)}:live"]
    # Deleting the alias deletes its config and its environments.
    lam.delete_alias(FunctionName=name, Name="live")
    assert count_environments(marker, 0) == 0
    lam.delete_function(FunctionName=name)


def test_one_config_per_version_and_none_on_latest_through_aliases(lam: Any) -> None:
    """AWS's guide: "Each version of a function can only have one provisioned concurrency
    configuration", "two aliases can't allocate provisioned concurrency for the same version",
    and none goes to `$LATEST` through an alias. UpdateAlias may not get around it (an audit
    moved a provisioned alias to $LATEST and onto a provisioned version)."""
    name, first, _ = deploy(lam)
    lam.update_function_configuration(FunctionName=name, Description="second")
    wait_updated(lam, name)
    second = lam.publish_version(FunctionName=name)["Version"]
    for alias in ("a", "b"):
        lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=first)
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier="a", ProvisionedConcurrentExecutions=1
    )
    twice = expect_failure(
        lambda: lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier="b", ProvisionedConcurrentExecutions=1
        )
    )
    assert (twice.code, twice.status) == ("ResourceConflictException", 409)
    to_latest = expect_failure(
        lambda: lam.update_alias(FunctionName=name, Name="a", FunctionVersion="$LATEST")
    )
    assert (to_latest.code, to_latest.status, to_latest.message) == (
        "InvalidParameterValueException",
        400,
        UNPUBLISHED,
    )
    lam.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=second, ProvisionedConcurrentExecutions=1
    )
    onto_provisioned = expect_failure(
        lambda: lam.update_alias(FunctionName=name, Name="a", FunctionVersion=second)
    )
    assert (onto_provisioned.code, onto_provisioned.status) == ("ResourceConflictException", 409)
    assert lam.get_alias(FunctionName=name, Name="a")["FunctionVersion"] == first
    # An alias without provisioned concurrency moves freely.
    assert lam.update_alias(FunctionName=name, Name="b", FunctionVersion="$LATEST")
    lam.delete_function(FunctionName=name)


# --- restart ------------------------------------------------------------------------------------


def test_configs_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "d"
    first = start_server(data)
    try:
        lam = client(first.endpoint)
        name, version, marker = deploy(lam)
        put = lam.put_provisioned_concurrency_config(
            FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
        )
        wait_ready(lam, name, version, 1)
    finally:
        first.stop()
    assert count_environments(marker, 0) == 0

    second = start_server(data)
    try:
        lam = client(second.endpoint)
        ready = wait_ready(lam, name, version, 1)
        assert ready["LastModified"] == put["LastModified"]
        assert count_environments(marker, 1) == 1  # re-created before any invocation
        body, log = invoke(lam, name, version)
        assert body["type"] == "provisioned-concurrency"
        assert INIT_DURATION not in report(log)
    finally:
        second.stop()
    assert count_environments(marker, 0) == 0
