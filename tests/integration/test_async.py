"""Asynchronous invocation (InvocationType=Event): durable acceptance, retries, destinations,
dead letters, expiry, and the FunctionEventInvokeConfig API (control-api.md §4.10, §4.15;
event-formats.md §9; limits.md §4)."""

from __future__ import annotations

import functools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from async_support import ASYNC_HANDLER, Queues, async_stats, records
from lamina_support import (
    client,
    create_params,
    expect_failure,
    function_arn,
    make_zip,
    poll,
    raw_request,
    start_server,
    unique_name,
    wait_active,
)

pytestmark = pytest.mark.integration

DELAY_SCALE = 0.01  # retries after ~0.6 s and ~1.2 s instead of ~1 min and ~2 min


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A server whose async retry delays are scaled down (the semantics are unchanged)."""
    live = start_server(
        tmp_path_factory.mktemp("async"), env={"LAMINA_ASYNC_DELAY_SCALE": str(DELAY_SCALE)}
    )
    yield live
    live.stop()


def deploy(lam: Any, **overrides: Any) -> str:
    name = unique_name("async")
    lam.create_function(**create_params(name, make_zip({"app.py": ASYNC_HANDLER}), **overrides))
    wait_active(lam, name)
    return name


def send(lam: Any, name: str, event: dict[str, Any], **params: Any) -> str:
    answer = lam.invoke(
        FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode(), **params
    )
    assert answer["StatusCode"] == 202, answer
    assert "ExecutedVersion" not in answer  # control-api.md §4.10: no version for Event
    assert answer["Payload"].read() == b""
    request_id: str = answer["ResponseMetadata"]["RequestId"]
    return request_id


def test_event_runs_and_success_record_goes_to_the_queue(fast: Any) -> None:
    lam, queues = client(fast.endpoint), Queues(fast.endpoint)
    name = deploy(lam)
    done = queues.create(unique_name("done"))
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": done}}
    )
    request_id = send(lam, name, {"n": 1})
    (record,) = records(queues.wait(done.rsplit(":", 1)[1], 1))
    # event-formats.md §9.1: the Success record, version-qualified ARN, payloads as JSON values
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": function_arn(name) + ":$LATEST",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["requestPayload"] == {"n": 1}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    # the function saw the 202's request id as its own (AWS: one id for the async invocation)
    assert record["responsePayload"] == {"ok": {"n": 1}, "request": request_id}
    assert record["timestamp"].endswith("Z")
    stats = poll(lambda: async_stats(fast.endpoint, name), lambda s: s["pending"] == 0)
    assert stats["outcomes"] == {"succeeded": 1, "destined": 1}


def test_function_errors_are_retried_then_destined_and_dead_lettered(fast: Any) -> None:
    lam, queues = client(fast.endpoint), Queues(fast.endpoint)
    failed_name, dead_name = unique_name("failed"), unique_name("dead")
    failed, dead = queues.create(failed_name), queues.create(dead_name)
    name = deploy(lam, DeadLetterConfig={"TargetArn": dead})
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": failed}},
    )
    started = time.monotonic()
    request_id = send(lam, name, {"fail": "always"})
    (record,) = records(queues.wait(failed_name, 1))
    elapsed = time.monotonic() - started
    # two retries, ~1 min then ~2 min apart in AWS: 0.6 s + 1.2 s at this server's scale
    assert elapsed >= (60 + 120) * DELAY_SCALE, elapsed
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["requestId"] == request_id
    assert record["responseContext"]["functionError"] == "Unhandled"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert record["responsePayload"]["errorMessage"] == "boom: always"
    # event-formats.md §9.2: the dead letter is the original event with AWS's attributes
    (letter,) = queues.wait(dead_name, 1)
    assert json.loads(letter["Body"]) == {"fail": "always"}
    assert letter["Attributes"] == {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": "200"},
        "ErrorMessage": {"DataType": "String", "StringValue": "boom: always"},
    }
    stats = poll(lambda: async_stats(fast.endpoint, name), lambda s: s["pending"] == 0)
    assert stats["outcomes"] == {"retried": 2, "failed": 1, "destined": 1, "dead_lettered": 1}


def test_zero_retries_fail_after_one_attempt(fast: Any) -> None:
    lam, queues = client(fast.endpoint), Queues(fast.endpoint)
    failed_name = unique_name("failed")
    failed = queues.create(failed_name)
    name = deploy(lam)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": failed}},
    )
    send(lam, name, {"fail": "once"})
    (record,) = records(queues.wait(failed_name, 1))
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert async_stats(fast.endpoint, name)["outcomes"].get("retried") is None


def test_event_too_old_for_its_retry_expires(tmp_path: Path) -> None:
    """With the real delays, a retry ~1 min later would pass a 60 s maximum age: the event
    ends with condition EventAgeExceeded after its one invocation."""
    live = start_server(tmp_path / "d")
    try:
        lam, queues = client(live.endpoint), Queues(live.endpoint)
        failed_name = unique_name("failed")
        failed = queues.create(failed_name)
        name = deploy(lam)
        lam.put_function_event_invoke_config(
            FunctionName=name,
            MaximumEventAgeInSeconds=60,
            DestinationConfig={"OnFailure": {"Destination": failed}},
        )
        send(lam, name, {"fail": "old"})
        (record,) = records(queues.wait(failed_name, 1))
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        stats = async_stats(live.endpoint, name)
        assert stats["outcomes"] == {"expired": 1, "destined": 1}
    finally:
        live.stop()


def test_function_destination_receives_the_record_as_its_event(fast: Any) -> None:
    lam, queues = client(fast.endpoint), Queues(fast.endpoint)
    done_name = unique_name("done")
    done = queues.create(done_name)
    second = deploy(lam)
    lam.put_function_event_invoke_config(
        FunctionName=second, DestinationConfig={"OnSuccess": {"Destination": done}}
    )
    first = deploy(lam)
    lam.put_function_event_invoke_config(
        FunctionName=first, DestinationConfig={"OnSuccess": {"Destination": function_arn(second)}}
    )
    request_id = send(lam, first, {"chain": True})
    (record,) = records(queues.wait(done_name, 1))
    # the second function was invoked asynchronously with the first one's Success record
    inner = record["requestPayload"]
    assert inner["requestContext"]["requestId"] == request_id
    assert inner["requestContext"]["functionArn"] == function_arn(first) + ":$LATEST"
    assert inner["responsePayload"]["ok"] == {"chain": True}
    assert record["requestContext"]["functionArn"] == function_arn(second) + ":$LATEST"


def test_a_record_too_large_for_a_function_destination_is_not_delivered(fast: Any) -> None:
    """A function destination is invoked asynchronously, so its record is held to the 1 MB
    Event limit (limits.md §1): a larger one counts as a failed delivery instead of becoming an
    event that could never run (found stuck in the queue, throttled, until it expired)."""
    lam = client(fast.endpoint)
    second = deploy(lam)
    first = deploy(lam)
    lam.put_function_event_invoke_config(
        FunctionName=first, DestinationConfig={"OnSuccess": {"Destination": function_arn(second)}}
    )
    send(lam, first, {"pad": "x" * 600_000})  # echoed back: the record holds it twice
    stats = poll(
        lambda: async_stats(fast.endpoint, first), lambda s: s["outcomes"].get("succeeded") == 1
    )
    assert stats["outcomes"] == {"succeeded": 1, "delivery_failed": 1}
    assert async_stats(fast.endpoint, second) == {
        "pending": 0,
        "in_flight": 0,
        "oldest_age_s": None,
        "outcomes": {},
    }


def test_a_deleted_destination_queue_is_counted_not_hidden(fast: Any) -> None:
    lam, queues = client(fast.endpoint), Queues(fast.endpoint)
    gone_name = unique_name("gone")
    gone = queues.create(gone_name)
    name = deploy(lam)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": gone}}
    )
    assert raw_request(fast.endpoint, "DELETE", f"/lamina/queues/{gone_name}").status == 204
    send(lam, name, {})
    stats = poll(
        lambda: async_stats(fast.endpoint, name), lambda s: s["outcomes"].get("succeeded") == 1
    )
    assert stats["outcomes"] == {"succeeded": 1, "delivery_failed": 1}


def test_a_burst_of_slow_events_scales_out(fast: Any) -> None:
    """A function's queued events run side by side, as synchronous invokes scale out (AWS
    takes a function's async events as fast as its concurrency allows), not 16 at a time."""
    lam = client(fast.endpoint)
    name = deploy(lam)
    for _ in range(40):
        send(lam, name, {"sleep": 2})
    most = 0
    for _ in range(2000):
        stats = async_stats(fast.endpoint, name)
        most = max(most, stats["in_flight"])
        if stats["outcomes"].get("succeeded") == 40:
            break
        time.sleep(0.01)  # polling the queue's counts: there is no completion event
    assert stats["outcomes"] == {"succeeded": 40}
    assert most > 16, most


def test_many_events_each_end_once(fast: Any) -> None:
    lam, queues = client(fast.endpoint), Queues(fast.endpoint)
    done_name = unique_name("done")
    done = queues.create(done_name)
    name = deploy(lam)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": done}}
    )
    sent = {send(lam, name, {"i": i}) for i in range(60)}
    got = records(queues.wait(done_name, 60))
    assert {r["requestContext"]["requestId"] for r in got} == sent
    assert sorted(r["requestPayload"]["i"] for r in got) == list(range(60))


# --- acceptance errors ------------------------------------------------------------------------


def test_async_payload_limit_is_one_megabyte(fast: Any) -> None:
    lam = client(fast.endpoint)
    name = deploy(lam)
    just_fits = json.dumps({"pad": "x" * (1_048_576 - 11)}).encode()
    assert len(just_fits) == 1_048_576
    assert (
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=just_fits)["StatusCode"]
        == 202
    )
    too_big = json.dumps({"pad": "x" * (1_048_576 - 10)}).encode()
    failure = expect_failure(
        lambda: lam.invoke(FunctionName=name, InvocationType="Event", Payload=too_big)
    )
    # AWS's code and wording, as public SDK error logs show them (the model also lists a
    # RequestTooLargeException, which AWS does not send here)
    assert (failure.code, failure.status) == ("RequestEntityTooLargeException", 413)
    assert failure.message == (
        f"{len(too_big)} byte payload is too large for the Event invocation type "
        "(limit 1048576 bytes)"
    )


def test_bad_async_requests_are_refused_before_acceptance(fast: Any) -> None:
    lam = client(fast.endpoint)
    name = deploy(lam)
    bad_json = expect_failure(
        lambda: lam.invoke(FunctionName=name, InvocationType="Event", Payload=b"{nope")
    )
    assert (bad_json.code, bad_json.status) == ("InvalidRequestContentException", 400)
    missing = expect_failure(
        lambda: lam.invoke(FunctionName=unique_name("none"), InvocationType="Event", Payload=b"{}")
    )
    assert (missing.code, missing.status) == ("ResourceNotFoundException", 404)
    assert async_stats(fast.endpoint, name) == {
        "pending": 0,
        "in_flight": 0,
        "oldest_age_s": None,
        "outcomes": {},
    }


# --- crash safety --------------------------------------------------------------------------


def test_accepted_events_survive_kill_9(tmp_path: Path) -> None:
    """A 202 means stored: kill -9 right after it, restart, and every event still runs."""
    data = tmp_path / "d"
    live = start_server(data)
    lam, queues = client(live.endpoint), Queues(live.endpoint)
    done_name = unique_name("done")
    done = queues.create(done_name)
    name = deploy(lam)
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": done}}
    )
    # each event sleeps, so the kill lands while most are still waiting or running
    sent = {send(lam, name, {"sleep": 0.5, "i": i}) for i in range(20)}
    assert len(queues.peek(done_name)) < 20  # some still waiting or running
    live.stop(kill=True)
    live = start_server(data)
    try:
        got = records(Queues(live.endpoint).wait(done_name, 20, timeout=60))
        assert {r["requestContext"]["requestId"] for r in got} >= sent
    finally:
        live.stop()


# --- FunctionEventInvokeConfig API ------------------------------------------------------------


@pytest.fixture
def configured(fast: Any) -> tuple[Any, str, str]:
    lam, queues = client(fast.endpoint), Queues(fast.endpoint)
    return lam, deploy(lam), queues.create(unique_name("q"))


def test_event_invoke_config_lifecycle(configured: tuple[Any, str, str]) -> None:
    lam, name, queue = configured
    put = lam.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=1, MaximumEventAgeInSeconds=120
    )
    assert put["FunctionArn"] == function_arn(name) + ":$LATEST"
    assert (put["MaximumRetryAttempts"], put["MaximumEventAgeInSeconds"]) == (1, 120)
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    assert put["LastModified"].year >= 2026
    # Update merges; Put replaces
    updated = lam.update_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": queue}}
    )
    assert (updated["MaximumRetryAttempts"], updated["MaximumEventAgeInSeconds"]) == (1, 120)
    assert updated["DestinationConfig"]["OnFailure"] == {"Destination": queue}
    got = lam.get_function_event_invoke_config(FunctionName=name)
    assert got["DestinationConfig"] == updated["DestinationConfig"]
    replaced = lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert "MaximumEventAgeInSeconds" not in replaced
    assert replaced["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    listed = lam.list_function_event_invoke_configs(FunctionName=name)
    assert [c["FunctionArn"] for c in listed["FunctionEventInvokeConfigs"]] == [
        function_arn(name) + ":$LATEST"
    ]
    lam.delete_function_event_invoke_config(FunctionName=name)
    missing = expect_failure(lambda: lam.get_function_event_invoke_config(FunctionName=name))
    assert (missing.code, missing.status) == ("ResourceNotFoundException", 404)
    # control-api.md §2, recorded wording
    assert missing.message == (
        f"The function {function_arn(name)}:$LATEST doesn't have an EventInvokeConfig"
    )
    again = expect_failure(lambda: lam.delete_function_event_invoke_config(FunctionName=name))
    assert again.code == "ResourceNotFoundException"


def test_event_invoke_config_on_a_version(configured: tuple[Any, str, str]) -> None:
    lam, name, _ = configured
    version = lam.publish_version(FunctionName=name)["Version"]
    put = lam.put_function_event_invoke_config(
        FunctionName=name, Qualifier=version, MaximumRetryAttempts=0
    )
    assert put["FunctionArn"] == f"{function_arn(name)}:{version}"
    absent = expect_failure(lambda: lam.get_function_event_invoke_config(FunctionName=name))
    assert absent.code == "ResourceNotFoundException"
    unknown = expect_failure(
        lambda: lam.put_function_event_invoke_config(
            FunctionName=name, Qualifier="99", MaximumRetryAttempts=0
        )
    )
    assert (unknown.code, unknown.status) == ("ResourceNotFoundException", 404)


def test_event_invoke_config_errors(fast: Any, configured: tuple[Any, str, str]) -> None:
    lam, name, _ = configured
    nothing = expect_failure(lambda: lam.put_function_event_invoke_config(FunctionName=name))
    assert (nothing.code, nothing.status) == ("InvalidParameterValueException", 400)
    assert nothing.message == (
        "You must specify at least one of error handling or destination setting."
    )
    itself = expect_failure(
        lambda: lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": function_arn(name)}}
        )
    )
    assert itself.message == "You can't specify the function as a destination for itself."
    sns = "arn:aws:sns:us-east-1:000000000000:topic"
    unsupported = expect_failure(
        lambda: lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnFailure": {"Destination": sns}}
        )
    )
    assert (unsupported.code, unsupported.status) == ("InvalidParameterValueException", 400)
    no_queue = "arn:aws:sqs:us-east-1:000000000000:" + unique_name("absent")
    absent = expect_failure(
        lambda: lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnFailure": {"Destination": no_queue}}
        )
    )
    assert absent.code == "InvalidParameterValueException"
    ghost = function_arn(unique_name("ghost"))
    no_function = expect_failure(
        lambda: lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": ghost}}
        )
    )
    # AWS refuses a destination function that does not exist, with its generic wording
    assert (no_function.code, no_function.status) == ("InvalidParameterValueException", 400)
    assert no_function.message == f"The destination ARN {ghost} is invalid."
    # Update changes an existing config; it does not create one (AWS: 404)
    not_yet = expect_failure(
        lambda: lam.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    )
    assert (not_yet.code, not_yet.status) == ("ResourceNotFoundException", 404)
    assert not_yet.message == (
        f"The function {function_arn(name)}:$LATEST doesn't have an EventInvokeConfig"
    )
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function_event_invoke_config(FunctionName=name)
    unchecked = client(fast.endpoint, validate=False)
    too_many = expect_failure(
        lambda: unchecked.put_function_event_invoke_config(
            FunctionName=name, MaximumRetryAttempts=3
        )
    )
    assert (too_many.code, too_many.status) == ("ValidationException", 400)
    too_young = expect_failure(
        lambda: unchecked.put_function_event_invoke_config(
            FunctionName=name, MaximumEventAgeInSeconds=59
        )
    )
    assert too_young.code == "ValidationException"
    # A service AWS delivers to no destination of: AWS prints the DestinationConfig (LocalStack's
    # AWS snapshot test_lambda_eventinvokeconfig_exceptions, put_destination_invalid_service_arn).
    iam = "arn:aws:iam:us-east-1:000000000000:function:" + name
    invalid = expect_failure(
        lambda: lam.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": iam}}
        )
    )
    assert (invalid.code, invalid.status) == ("InvalidParameterValueException", 400)
    assert invalid.message == (
        f"The provided destination config DestinationConfig(onSuccess=OnSuccess(destination={iam})"
        ", onFailure=null) is invalid."
    )


def test_event_invoke_config_of_what_is_not_there(configured: tuple[Any, str, str]) -> None:
    """Put, Update and List of a missing function or qualifier: "The function doesn't exist.";
    Get and Delete do not look for the function, so it has no config (LocalStack's AWS
    snapshot test_lambda_eventinvokeconfig_exceptions)."""
    lam, name, _ = configured
    gone = unique_name("none")
    for call in (
        lambda: lam.put_function_event_invoke_config(FunctionName=gone, MaximumRetryAttempts=1),
        lambda: lam.update_function_event_invoke_config(FunctionName=gone, MaximumRetryAttempts=1),
        lambda: lam.list_function_event_invoke_configs(FunctionName=gone),
        lambda: lam.put_function_event_invoke_config(
            FunctionName=name, Qualifier="nosuchalias", MaximumRetryAttempts=1
        ),
    ):
        missing = expect_failure(call)
        assert (missing.code, missing.status) == ("ResourceNotFoundException", 404)
        assert missing.message == "The function doesn't exist."
    for call, arn in (
        (
            lambda: lam.get_function_event_invoke_config(FunctionName=gone),
            f"{function_arn(gone)}:$LATEST",
        ),
        (
            lambda: lam.delete_function_event_invoke_config(FunctionName=gone),
            f"{function_arn(gone)}:$LATEST",
        ),
        (
            lambda: lam.get_function_event_invoke_config(
                FunctionName=name, Qualifier="nosuchalias"
            ),
            f"{function_arn(name)}:nosuchalias",
        ),
    ):
        missing = expect_failure(call)
        assert (missing.code, missing.status) == ("ResourceNotFoundException", 404)
        assert missing.message == f"The function {arn} doesn't have an EventInvokeConfig"


# --- built-in queues -----------------------------------------------------------------------


def test_queue_api(fast: Any) -> None:
    endpoint = fast.endpoint
    queues = Queues(endpoint)
    name = unique_name("q")
    arn = queues.create(name)
    assert arn == f"arn:aws:sqs:us-east-1:000000000000:{name}"
    duplicate = raw_request(
        endpoint, "POST", "/lamina/queues", body=json.dumps({"Name": name}).encode()
    )
    assert (duplicate.status, duplicate.error_type) == (409, "ResourceConflictException")
    bad = raw_request(endpoint, "POST", "/lamina/queues", body=b'{"Name": "no spaces"}')
    assert (bad.status, bad.error_type) == (400, "InvalidParameterValueException")
    for document in (b'{"Name": 5}', b"{}"):  # named as what was wrong, not as an empty name
        not_text = raw_request(endpoint, "POST", "/lamina/queues", body=document)
        assert (not_text.status, not_text.json()["message"]) == (400, "Name must be a string.")
    for i in range(3):
        body = json.dumps({"Body": f"m{i}", "Attributes": {"k": i}}).encode()
        sent = raw_request(endpoint, "POST", f"/lamina/queues/{name}/messages", body=body)
        assert sent.status == 200
        assert uuid.UUID(sent.json()["MessageId"])
    assert [m["Body"] for m in queues.peek(name)] == ["m0", "m1", "m2"]  # reading keeps them
    assert queues.describe(name)["Messages"] == 3
    assert [m["Body"] for m in queues.drain(name, 2)] == ["m0", "m1"]  # FIFO, removed
    assert [(m["Body"], m["Attributes"]) for m in queues.drain(name)] == [("m2", {"k": 2})]
    assert queues.describe(name)["Messages"] == 0
    # Peek, then delete by id what was read: a reader that fails half-way loses nothing.
    kept = [queues.send(name, body) for body in ("p0", "p1")]
    deleted = raw_request(
        endpoint,
        "POST",
        f"/lamina/queues/{name}/delete",
        body=json.dumps({"MessageIds": [kept[0], "no-such-id"]}).encode(),
    )
    assert (deleted.status, deleted.json()) == (200, {"Deleted": 1})
    assert [m["Body"] for m in queues.peek(name)] == ["p1"]
    malformed = raw_request(
        endpoint, "POST", f"/lamina/queues/{name}/delete", body=b'{"MessageIds": "p1"}'
    )
    assert (malformed.status, malformed.error_type) == (400, "InvalidParameterValueException")
    listed = raw_request(endpoint, "GET", "/lamina/queues").json()["Queues"]
    assert name in [q["Name"] for q in listed]
    assert raw_request(endpoint, "DELETE", f"/lamina/queues/{name}").status == 204
    missing = raw_request(endpoint, "GET", f"/lamina/queues/{name}")
    assert (missing.status, missing.error_type) == (404, "ResourceNotFoundException")
    unsigned = raw_request(endpoint, "GET", "/lamina/queues", sign=False)
    assert unsigned.status == 403


# --- throttles -----------------------------------------------------------------------------


def hold_the_only_slot(lam: Any, name: str, seconds: float) -> threading.Thread:
    """Reserve one slot for `name` and take it with a synchronous invoke for `seconds`."""
    lam.invoke(FunctionName=name, Payload=b"{}")  # warm: the holder starts at once
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    payload = json.dumps({"sleep": seconds}).encode()
    holder = threading.Thread(target=lambda: lam.invoke(FunctionName=name, Payload=payload))
    holder.start()
    time.sleep(0.5)  # a warm invoke starts in about a millisecond
    return holder


def test_throttled_events_wait_in_the_queue_and_run_later(fast: Any) -> None:
    """limits.md §3: an Event invoke while throttled is accepted and retried with backoff, never
    lost and never counted against MaximumRetryAttempts."""
    lam, queues = client(fast.endpoint), Queues(fast.endpoint)
    done_name = unique_name("done")
    done = queues.create(done_name)
    name = deploy(lam)
    lam.put_function_event_invoke_config(
        FunctionName=name,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": done}},
    )
    holder = hold_the_only_slot(lam, name, 3.0)
    request_id = send(lam, name, {"held": True})
    stats = poll(
        lambda: async_stats(fast.endpoint, name),
        lambda s: s["outcomes"].get("throttled", 0) >= 3,
    )
    assert stats["pending"] + stats["in_flight"] == 1, stats
    assert queues.peek(done_name) == []
    holder.join()
    (record,) = records(queues.wait(done_name, 1))
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["approximateInvokeCount"] == 1


def test_reserved_concurrency_zero_fails_events_at_once(fast: Any) -> None:
    """With reserved concurrency 0 AWS sends an Event to its DLQ or OnFailure destination at
    once instead of retrying it (AWS's notice of August 2021, quoted in
    SummitRoute/aws_breaking_changes#48 and banyan-team/banyan-julia#7)."""
    lam, queues = client(fast.endpoint), Queues(fast.endpoint)
    failures_name, dead_name = unique_name("failures"), unique_name("dead")
    failures, dead = queues.create(failures_name), queues.create(dead_name)
    name = deploy(lam, DeadLetterConfig={"TargetArn": dead})
    lam.put_function_event_invoke_config(
        FunctionName=name, DestinationConfig={"OnFailure": {"Destination": failures}}
    )
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    request_id = send(lam, name, {"never": "ran"})
    (record,) = records(queues.wait(failures_name, 1))
    context = record["requestContext"]
    assert (context["requestId"], context["condition"]) == (request_id, "RetriesExhausted")
    assert context["approximateInvokeCount"] == 0
    assert record["requestPayload"] == {"never": "ran"}
    assert "responseContext" not in record
    (letter,) = queues.wait(dead_name, 1)
    assert json.loads(letter["Body"]) == {"never": "ran"}
    stats = async_stats(fast.endpoint, name)
    assert stats["outcomes"] == {"failed": 1, "destined": 1, "dead_lettered": 1}, stats
    assert (stats["pending"], stats["in_flight"]) == (0, 0)


def test_events_of_a_deleted_function_are_discarded_and_counted(fast: Any) -> None:
    lam = client(fast.endpoint)
    name = deploy(lam)
    holder = hold_the_only_slot(lam, name, 2.0)
    send(lam, name, {})
    poll(
        lambda: async_stats(fast.endpoint, name),
        lambda s: s["outcomes"].get("throttled", 0) >= 1,
    )
    lam.delete_function(FunctionName=name)
    stats = poll(lambda: async_stats(fast.endpoint, name), lambda s: "discarded" in s["outcomes"])
    assert stats["outcomes"]["discarded"] == 1
    assert stats["pending"] == 0
    holder.join()


def test_a_deleted_functions_waiting_event_never_runs_on_a_new_function_of_its_name(
    fast: Any,
) -> None:
    """DeleteFunction ends the function's waiting events at once (DISCARDED): a function created
    again under the same name must not run an event accepted for the old one (an audit found
    the old event's retry running on the new code)."""
    lam = client(fast.endpoint)
    name = deploy(lam)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=2)
    send(lam, name, {"fail": "old"})
    poll(lambda: async_stats(fast.endpoint, name), lambda s: s["outcomes"].get("retried", 0) >= 1)
    lam.delete_function(FunctionName=name)  # its retry is due ~0.6 s after the first failure
    succeeds = "def handler(event, context):\n    return {'new': True}\n"
    lam.create_function(**create_params(name, make_zip({"app.py": succeeds})))
    wait_active(lam, name)
    time.sleep(3.0)  # past both retries the old event had (~0.6 s and ~1.8 s)
    stats = async_stats(fast.endpoint, name)
    # Counts are kept by function name, as CloudWatch keeps Lambda's metrics. On a busy machine
    # the first retry may run (and fail) before the delete lands: the second is what waits then.
    outcomes = stats["outcomes"]
    assert outcomes in ({"retried": 1, "discarded": 1}, {"retried": 2, "discarded": 1}), stats
    assert (stats["pending"], stats["in_flight"]) == (0, 0)


def test_dead_letter_target_must_be_a_built_in_queue(fast: Any) -> None:
    lam = client(fast.endpoint)
    name = deploy(lam)
    for target in (
        "arn:aws:sns:us-east-1:000000000000:topic",
        "arn:aws:sqs:us-east-1:000000000000:" + unique_name("absent"),
        function_arn(name),
    ):
        refused = expect_failure(
            functools.partial(
                lam.update_function_configuration,
                FunctionName=name,
                DeadLetterConfig={"TargetArn": target},
            )
        )
        assert (refused.code, refused.status) == ("InvalidParameterValueException", 400)
    queue = Queues(fast.endpoint).create(unique_name("dlq"))
    updated = lam.update_function_configuration(
        FunctionName=name, DeadLetterConfig={"TargetArn": queue}
    )
    assert updated["DeadLetterConfig"] == {"TargetArn": queue}
