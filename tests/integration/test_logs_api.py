"""The CloudWatch Logs API subset against a live server: real boto3 `logs` clients."""

from __future__ import annotations

import asyncio
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from lamina_support import (
    ACCOUNT,
    REGION,
    client,
    create_params,
    expect_failure,
    make_zip,
    poll,
    start_server,
    unique_name,
    wait_active,
)

from lamina.observability.logstore import DAY_MS, FileLogSink

pytestmark = pytest.mark.integration

STREAM_RE = r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}"
CHATTY = """\
import json, logging, sys
def handler(event, context):
    for i in range(event.get("lines", 0)):
        print(f"line {i:03d} of {context.aws_request_id}")
    print("ERROR something failed" if event.get("fail") else "all fine")
    print(json.dumps({"level": event.get("level", "INFO"), "latency": event.get("latency", 1)}))
    sys.stderr.write("to stderr\\n")
    logging.getLogger().warning("a warning")
    return "ok"
"""


def logs_client(endpoint: str, validate: bool = True) -> Any:
    factory: Any = boto3.client
    return factory(
        "logs",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            retries={"max_attempts": 0, "mode": "standard"}, parameter_validation=validate
        ),
    )


def deploy(endpoint: str, **overrides: Any) -> str:
    lam = client(endpoint)
    name = unique_name("logs")
    lam.create_function(**create_params(name, make_zip({"app.py": CHATTY}), **overrides))
    wait_active(lam, name)
    return name


def invoke(endpoint: str, name: str, event: dict[str, Any] | None = None) -> str:
    response = client(endpoint).invoke(FunctionName=name, Payload=json.dumps(event or {}))
    assert response["StatusCode"] == 200
    return str(response["ResponseMetadata"]["RequestId"])


def all_events(logs: Any, group: str, **kwargs: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group, **kwargs):
        events.extend(page["events"])
    return events


@pytest.fixture(scope="module")
def chatty(server: Any) -> tuple[str, str]:
    """A function invoked twice (the second time failing loudly); its name and log group."""
    name = deploy(server.endpoint)
    invoke(server.endpoint, name, {"lines": 3})
    invoke(server.endpoint, name, {"fail": True, "level": "ERROR", "latency": 250})
    return name, f"/aws/lambda/{name}"


# --- groups and streams --------------------------------------------------------------------------


def test_function_log_group_and_stream(server: Any, chatty: tuple[str, str]) -> None:
    logs = logs_client(server.endpoint)
    _, group = chatty
    [found] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert found["logGroupName"] == group
    assert found["arn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"
    assert found["logGroupArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
    assert found["storedBytes"] > 0
    assert abs(found["creationTime"] - time.time() * 1000) < 600_000
    assert "retentionInDays" not in found
    pattern = logs.describe_log_groups(logGroupNamePattern=group.split("/")[-1])["logGroups"]
    assert [g["logGroupName"] for g in pattern] == [group]
    [stream] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert re.fullmatch(STREAM_RE, stream["logStreamName"]), stream
    assert stream["firstEventTimestamp"] <= stream["lastEventTimestamp"]
    assert stream["arn"].endswith(f":log-group:{group}:log-stream:{stream['logStreamName']}")
    by_time = logs.describe_log_streams(logGroupName=group, orderBy="LastEventTime")
    assert by_time["logStreams"][0]["logStreamName"] == stream["logStreamName"]


def test_describe_log_groups_pages(server: Any) -> None:
    names = [deploy(server.endpoint) for _ in range(3)]
    for name in names:
        invoke(server.endpoint, name)
    logs = logs_client(server.endpoint)
    seen: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"logGroupNamePrefix": "/aws/lambda/logs-", "limit": 1}
        if token:
            kwargs["nextToken"] = token
        page = logs.describe_log_groups(**kwargs)
        seen += [g["logGroupName"] for g in page["logGroups"]]
        token = page.get("nextToken")
        if not token:
            break
    assert {f"/aws/lambda/{n}" for n in names} <= set(seen)
    assert seen == sorted(seen)


# --- GetLogEvents ----------------------------------------------------------------------------


def test_get_log_events_has_platform_lines_and_output(server: Any) -> None:
    name = deploy(server.endpoint)
    request_id = invoke(server.endpoint, name)
    logs = logs_client(server.endpoint)
    group = f"/aws/lambda/{name}"
    [stream] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    events = logs.get_log_events(
        logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
    )["events"]
    messages = [e["message"] for e in events]
    assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert "all fine" in messages
    assert "to stderr" in messages
    assert any(
        re.fullmatch(r"\[WARNING\]\t\S+Z\t" + request_id + r"\ta warning", m) for m in messages
    )
    assert messages[-2] == f"END RequestId: {request_id}"
    assert messages[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert messages[-1].endswith("\t")
    stamps = [e["timestamp"] for e in events]
    assert stamps == sorted(stamps)


def test_get_log_events_paging_tokens(server: Any) -> None:
    name = deploy(server.endpoint)
    invoke(server.endpoint, name, {"lines": 40})
    logs = logs_client(server.endpoint)
    group = f"/aws/lambda/{name}"
    [stream] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    where = {"logGroupName": group, "logStreamName": stream["logStreamName"]}
    everything = [e["message"] for e in logs.get_log_events(**where, startFromHead=True)["events"]]
    assert len(everything) == 47  # START, 40 lines, 4 of output, END, REPORT
    forward: list[str] = []
    page = logs.get_log_events(**where, startFromHead=True, limit=10)
    while page["events"]:
        forward += [e["message"] for e in page["events"]]
        token = page["nextForwardToken"]
        page = logs.get_log_events(**where, startFromHead=True, limit=10, nextToken=token)
    assert forward == everything
    assert page["nextForwardToken"] == token  # the end: the same token comes back
    newest = logs.get_log_events(**where, limit=10)  # without a token: the latest events
    assert [e["message"] for e in newest["events"]] == everything[-10:]
    older = logs.get_log_events(**where, limit=10, nextToken=newest["nextBackwardToken"])
    assert [e["message"] for e in older["events"]] == everything[-20:-10]
    start = logs.get_log_events(**where, limit=100, nextToken=older["nextBackwardToken"])
    assert [e["message"] for e in start["events"]] == everything[:-20]
    at_head = logs.get_log_events(**where, nextToken=start["nextBackwardToken"])
    assert at_head["events"] == []
    assert at_head["nextBackwardToken"] == start["nextBackwardToken"]
    later = logs.get_log_events(
        **where, startFromHead=True, startTime=int(time.time() * 1000) + 60_000
    )
    assert later["events"] == []


# --- FilterLogEvents ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("ERROR", ["ERROR something failed", '{"level": "ERROR", "latency": 250}']),
        ('"something failed"', ["ERROR something failed"]),
        ("ERROR -something", ['{"level": "ERROR", "latency": 250}']),
        ("?stderr ?failed", ["to stderr", "ERROR something failed", "to stderr"]),
        ('{ $.level = "ERROR" }', ['{"level": "ERROR", "latency": 250}']),
        ("{ $.latency > 100 }", ['{"level": "ERROR", "latency": 250}']),
        ("{ $.latency <= 100 }", ['{"level": "INFO", "latency": 1}']),
        ("%line 00[02]%", None),  # checked below: lines 0 and 2
    ],
)
def test_filter_patterns(
    server: Any, chatty: tuple[str, str], pattern: str, expected: list[str] | None
) -> None:
    logs = logs_client(server.endpoint)
    _, group = chatty
    messages = [e["message"] for e in all_events(logs, group, filterPattern=pattern)]
    if expected is None:
        assert [m.split(" of ")[0] for m in messages] == ["line 000", "line 002"]
    else:
        assert messages == expected


def test_filter_time_range_streams_and_pages(server: Any, chatty: tuple[str, str]) -> None:
    logs = logs_client(server.endpoint)
    _, group = chatty
    everything = all_events(logs, group)
    assert len(everything) >= 16
    stamps = [e["timestamp"] for e in everything]
    assert stamps == sorted(stamps)
    assert len({e["eventId"] for e in everything}) == len(everything)
    paged: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"logGroupName": group, "limit": 3}
    while True:
        page = logs.filter_log_events(**kwargs)
        assert len(page["events"]) <= 3
        paged += page["events"]
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert [e["eventId"] for e in paged] == [e["eventId"] for e in everything]
    late = stamps[-1] + 1
    assert all_events(logs, group, startTime=late) == []
    window = all_events(logs, group, startTime=stamps[0], endTime=stamps[0])
    assert window
    assert all(e["timestamp"] == stamps[0] for e in window)
    stream = everything[0]["logStreamName"]
    assert len(all_events(logs, group, logStreamNames=[stream])) == len(everything)
    assert all_events(logs, group, logStreamNames=["no-such-stream"]) == []
    assert len(all_events(logs, group, logStreamNamePrefix=stream[:11])) == len(everything)
    assert all_events(logs, group, logStreamNamePrefix="1999/") == []


# --- errors ----------------------------------------------------------------------------------


def test_missing_resources(server: Any, chatty: tuple[str, str]) -> None:
    logs = logs_client(server.endpoint)
    _, group = chatty
    missing = "/aws/lambda/never-ran"
    calls = [
        lambda: logs.describe_log_streams(logGroupName=missing),
        lambda: logs.get_log_events(logGroupName=missing, logStreamName="x"),
        lambda: logs.filter_log_events(logGroupName=missing),
        lambda: logs.delete_log_group(logGroupName=missing),
        lambda: logs.delete_log_stream(logGroupName=missing, logStreamName="x"),
        lambda: logs.put_retention_policy(logGroupName=missing, retentionInDays=1),
        lambda: logs.delete_retention_policy(logGroupName=missing),
    ]
    for call in calls:
        failure = expect_failure(call)
        assert (failure.code, failure.status) == ("ResourceNotFoundException", 400)
        assert failure.message == "The specified log group does not exist."
    for call in (
        lambda: logs.get_log_events(logGroupName=group, logStreamName="no-such-stream"),
        lambda: logs.delete_log_stream(logGroupName=group, logStreamName="no-such-stream"),
    ):
        failure = expect_failure(call)
        assert (failure.code, failure.message) == (
            "ResourceNotFoundException",
            "The specified log stream does not exist.",
        )


def test_invalid_parameters(server: Any, chatty: tuple[str, str]) -> None:
    logs = logs_client(server.endpoint)
    raw = logs_client(server.endpoint, validate=False)
    _, group = chatty
    bad = [
        lambda: logs.filter_log_events(logGroupName=group, filterPattern='"unterminated'),
        lambda: logs.filter_log_events(logGroupName=group, filterPattern="{ $.x > }"),
        lambda: logs.put_retention_policy(logGroupName=group, retentionInDays=2),
        lambda: logs.filter_log_events(logGroupName=group, nextToken="not-a-token"),
        lambda: logs.get_log_events(logGroupName=group, logStreamName="x", nextToken="f/1"),
        lambda: logs.describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="2"
        ),
        lambda: logs.filter_log_events(
            logGroupName=group, logStreamNames=["a"], logStreamNamePrefix="a"
        ),
        lambda: raw.describe_log_groups(limit=51),
        lambda: raw.get_log_events(logGroupName=group),
        lambda: raw.describe_log_streams(),
    ]
    for call in bad:
        failure = expect_failure(call)
        assert (failure.code, failure.status) == ("InvalidParameterException", 400), failure
    retention = expect_failure(bad[2])
    assert retention.message.startswith(
        "1 validation error detected: Value '2' at 'retentionInDays' failed to satisfy "
        "constraint: Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120"
    )
    limit = expect_failure(bad[7])
    assert "at 'limit' failed to satisfy constraint" in limit.message


def test_unimplemented_operation_is_named(server: Any) -> None:
    failure = expect_failure(
        lambda: logs_client(server.endpoint).create_log_group(logGroupName="/x")
    )
    assert failure.code == "NotImplementedException"
    assert "CreateLogGroup" in failure.message


# --- deletion and retention ----------------------------------------------------------------------


def test_delete_stream_then_group(server: Any) -> None:
    name = deploy(server.endpoint)
    invoke(server.endpoint, name)
    logs = logs_client(server.endpoint)
    group = f"/aws/lambda/{name}"
    [stream] = logs.describe_log_streams(logGroupName=group)["logStreams"]
    logs.delete_log_stream(logGroupName=group, logStreamName=stream["logStreamName"])
    assert logs.describe_log_streams(logGroupName=group)["logStreams"] == []
    logs.delete_log_group(logGroupName=group)
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] == []
    invoke(server.endpoint, name)  # the warm environment writes again: AWS recreates it
    assert logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] != []


def test_retention_drops_old_events(tmp_path: Path) -> None:
    data = tmp_path / "data"
    group, stream = "/aws/lambda/old-timer", "2020/01/01/[$LATEST]" + "0" * 32
    now = int(time.time() * 1000)
    sink = FileLogSink(data / "logs")  # written through the storage layer before the server
    sink.write(group, stream, [(now - 5 * DAY_MS, "five days old")])
    sink.flush()
    sink.write(group, stream, [(now - 2 * DAY_MS, "two days old"), (now - 1000, "fresh")])
    asyncio.run(sink.close())
    live = start_server(data)
    try:
        logs = logs_client(live.endpoint)
        assert [e["message"] for e in all_events(logs, group)] == [
            "five days old",
            "two days old",
            "fresh",
        ]
        logs.put_retention_policy(logGroupName=group, retentionInDays=3)
        [described] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        assert described["retentionInDays"] == 3
        assert [e["message"] for e in all_events(logs, group)] == ["two days old", "fresh"]
        logs.put_retention_policy(logGroupName=group, retentionInDays=1)
        assert [e["message"] for e in all_events(logs, group)] == ["fresh"]
        where = {"logGroupName": group, "logStreamName": stream}
        got = logs.get_log_events(**where, startFromHead=True)["events"]
        assert [e["message"] for e in got] == ["fresh"]
        logs.delete_retention_policy(logGroupName=group)
        [described] = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
        assert "retentionInDays" not in described
    finally:
        live.stop()


def test_logs_survive_kill_9(tmp_path: Path) -> None:
    live = start_server(tmp_path / "data")
    try:
        name = deploy(live.endpoint)
        request_id = invoke(live.endpoint, name, {"lines": 5})
        group = f"/aws/lambda/{name}"
        logs = logs_client(live.endpoint)
        poll(lambda: all_events(logs, group), lambda e: len(e) >= 12)
    finally:
        live.stop(kill=True)
    live = start_server(tmp_path / "data")
    try:
        logs = logs_client(live.endpoint)
        messages = [e["message"] for e in all_events(logs, group)]
        assert messages[0] == f"START RequestId: {request_id} Version: $LATEST"
        assert messages[-1].startswith(f"REPORT RequestId: {request_id}")
        second = invoke(live.endpoint, name)
        messages = [e["message"] for e in all_events(logs, group)]
        assert messages[-1].startswith(f"REPORT RequestId: {second}")
        assert len(logs.describe_log_streams(logGroupName=group)["logStreams"]) == 2
    finally:
        live.stop()


# --- LoggingConfig -------------------------------------------------------------------------


def test_json_format_and_levels(server: Any) -> None:
    logs = logs_client(server.endpoint)
    config = {"LogFormat": "JSON", "ApplicationLogLevel": "ERROR", "SystemLogLevel": "DEBUG"}
    debug = deploy(server.endpoint, LoggingConfig=config)
    request_id = invoke(server.endpoint, debug)
    records = [json.loads(e["message"]) for e in all_events(logs, f"/aws/lambda/{debug}")
               if e["message"].startswith('{"time"')]  # fmt: skip
    assert [r["type"] for r in records] == [
        "platform.start",
        "platform.runtimeDone",
        "platform.report",
    ]
    assert records[0]["record"] == {"requestId": request_id, "version": "$LATEST"}
    report = records[2]["record"]
    assert report["requestId"] == request_id
    assert report["status"] == "success"
    assert set(report["metrics"]) >= {"durationMs", "billedDurationMs", "memorySizeMB"}
    assert report["metrics"]["memorySizeMB"] == 128
    assert "initDurationMs" in report["metrics"]
    messages = [e["message"] for e in all_events(logs, f"/aws/lambda/{debug}")]
    assert "all fine" in messages  # print is not a logging record: never filtered
    assert not any("a warning" in m for m in messages)  # below ApplicationLogLevel ERROR
    assert not any(m.startswith(("START", "END", "REPORT")) for m in messages)
    quiet = deploy(server.endpoint, LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "WARN"})
    invoke(server.endpoint, quiet)
    messages = [e["message"] for e in all_events(logs, f"/aws/lambda/{quiet}")]
    assert not any(m.startswith('{"time"') for m in messages)  # no platform record is WARN
    warning = [json.loads(m) for m in messages if "a warning" in m]
    assert [(w["level"], w["message"]) for w in warning] == [("WARNING", "a warning")]
    default = deploy(server.endpoint, LoggingConfig={"LogFormat": "JSON"})
    invoke(server.endpoint, default)
    kinds = [
        json.loads(e["message"])["type"]
        for e in all_events(
            logs, f"/aws/lambda/{default}", filterPattern='{ $.type = "platform*" }'
        )
    ]
    assert kinds == ["platform.start", "platform.report"]  # SystemLogLevel INFO by default


def test_custom_log_group(server: Any) -> None:
    group = f"/custom/{unique_name('grp')}"
    name = deploy(server.endpoint, LoggingConfig={"LogFormat": "Text", "LogGroup": group})
    invoke(server.endpoint, name)
    logs = logs_client(server.endpoint)
    assert "all fine" in [e["message"] for e in all_events(logs, group)]
    assert logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{name}")["logGroups"] == []


def test_output_larger_than_the_pipe_flows(server: Any) -> None:
    """3 MB printed in one invocation (the pipe holds 1 MB): nothing stalls or is lost."""
    lam = client(server.endpoint)
    name = unique_name("logs")
    code = (
        "def handler(event, context):\n"
        "    for i in range(30000):\n"
        "        print(f'{i:06d} ' + 'x' * 93)\n"
        "    return 'ok'\n"
    )
    lam.create_function(**create_params(name, make_zip({"app.py": code}), Timeout=30))
    wait_active(lam, name)
    started = time.monotonic()
    invoke(server.endpoint, name)
    assert time.monotonic() - started < 25  # a stalled pipe would run into the 30 s timeout
    logs = logs_client(server.endpoint)
    printed = all_events(logs, f"/aws/lambda/{name}", filterPattern="xxxxxxxxxx")
    assert [e["message"][:6] for e in printed] == [f"{i:06d}" for i in range(30000)]


def test_each_stream_reads_start_output_end_report_under_concurrent_invokes(server: Any) -> None:
    """Without LogType=Tail an invocation's END and REPORT are written just after its answer
    (Environment.invoke): an environment taken again at once must still log them before the
    next START. Eight clients invoke at once, many times; every stream is well-formed."""
    lam = client(server.endpoint)
    name = unique_name("logs")
    code = "def handler(event, context):\n    print('ran', context.aws_request_id)\n"
    lam.create_function(**create_params(name, make_zip({"app.py": code})))
    wait_active(lam, name)

    def calls(_: int) -> list[str]:
        return [invoke(server.endpoint, name) for _ in range(15)]

    with ThreadPoolExecutor(8) as pool:
        request_ids = [rid for batch in pool.map(calls, range(8)) for rid in batch]
    logs = logs_client(server.endpoint)
    group = f"/aws/lambda/{name}"
    poll(
        lambda: all_events(logs, group, filterPattern="REPORT"),
        lambda reports: len(reports) == len(request_ids),
        10,
    )
    seen = []
    for stream in logs.describe_log_streams(logGroupName=group)["logStreams"]:
        messages = [
            e["message"]
            for e in logs.get_log_events(
                logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
        ]
        assert len(messages) % 4 == 0, messages
        for i in range(0, len(messages), 4):
            rid = messages[i].removeprefix("START RequestId: ").removesuffix(" Version: $LATEST")
            assert messages[i + 1 : i + 3] == [f"ran {rid}", f"END RequestId: {rid}"], messages
            assert messages[i + 3].startswith(f"REPORT RequestId: {rid}\tDuration: "), messages
            seen.append(rid)
    assert sorted(seen) == sorted(request_ids)
