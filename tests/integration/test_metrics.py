"""`/metrics` (Prometheus text, unauthenticated) and the per-function time series
(`GET /lamina/functions/{name}/metrics`), read with Prometheus' own parser against a live
server after real invocations: successes, function errors, a throttle, cold starts, a
published version, a long invocation in flight and async retries with a dead letter."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from async_support import ASYNC_HANDLER, Queues, async_stats
from lamina_support import (
    client,
    create_params,
    expect_failure,
    make_zip,
    poll,
    raw_request,
    start_server,
    unique_name,
    wait_active,
)
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

REGION = "us-east-1"
DELAY_SCALE = 0.01  # async retries after ~0.6 s instead of ~1 min
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = start_server(
        tmp_path_factory.mktemp("metrics"), env={"LAMINA_ASYNC_DELAY_SCALE": str(DELAY_SCALE)}
    )
    yield server
    server.stop()


def scrape(endpoint: str) -> tuple[Samples, set[str]]:
    """Every sample by (name, sorted labels), and the family names; unsigned, as Prometheus."""
    answer = httpx.get(f"{endpoint}/metrics", timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    families: set[str] = set()
    for family in text_string_to_metric_families(answer.text):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples, families


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def deploy(lam: Any) -> str:
    name = unique_name("metrics")
    lam.create_function(**create_params(name, make_zip({"app.py": ASYNC_HANDLER})))
    wait_active(lam, name)
    return name


def invoke(lam: Any, name: str, event: dict[str, Any], qualifier: str | None = None) -> Any:
    extra = {"Qualifier": qualifier} if qualifier else {}
    return lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **extra)


def test_invocations_errors_throttles_and_cold_starts(live: Any) -> None:
    lam = client(live.endpoint)
    name = deploy(lam)
    for event in ({}, {}, {"fail": 1}, {}, {"fail": 2}, {}, {}):  # sequential: one environment
        answer = invoke(lam, name, event)
        assert ("FunctionError" in answer) == ("fail" in event)
    version = lam.publish_version(FunctionName=name)["Version"]
    assert invoke(lam, name, {}, version)["ExecutedVersion"] == version
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    throttled = expect_failure(lambda: invoke(lam, name, {}))
    assert throttled.code == "TooManyRequestsException"
    lam.delete_function_concurrency(FunctionName=name)

    samples, families = scrape(live.endpoint)
    latest = {"region": REGION, "function": name, "version": "$LATEST"}
    published = {**latest, "version": version}
    assert sample(samples, "lamina_invocations_total", **latest) == 7
    assert sample(samples, "lamina_errors_total", **latest) == 2
    assert sample(samples, "lamina_throttles_total", **latest) == 1
    assert sample(samples, "lamina_cold_starts_total", **latest) == 1
    assert sample(samples, "lamina_duration_seconds_count", **latest) == 7
    assert sample(samples, "lamina_duration_seconds_bucket", le="+Inf", **latest) == 7
    assert 0 < sample(samples, "lamina_duration_seconds_sum", **latest) < 7 * 5
    assert sample(samples, "lamina_init_duration_seconds_count", **latest) == 1
    assert sample(samples, "lamina_init_duration_seconds_sum", **latest) > 0
    assert sample(samples, "lamina_invocations_total", **published) == 1
    assert sample(samples, "lamina_cold_starts_total", **published) == 1
    assert sample(samples, "lamina_errors_total", **published) == 0
    assert sample(samples, "lamina_throttles_total", **published) == 0
    # Idle now: warm environments of both versions, nothing running.
    assert sample(samples, "lamina_concurrent_executions", **latest) == 0
    assert {"process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds"} <= (
        families
    )

    # The time series holds the same counts (summed: the calls may straddle a minute).
    answer = raw_request(
        live.endpoint, "GET", f"/lamina/functions/{name}/metrics", query="minutes=5"
    )
    assert answer.status == 200, answer.content
    document = answer.json()
    assert (document["FunctionName"], document["PeriodSeconds"]) == (name, 60)
    points = document["Points"]
    assert len(points) == 5
    totals = {
        field: sum(point[field] for point in points)
        for field in ("Invocations", "Errors", "Throttles", "ColdStarts", "DurationCount")
    }
    assert totals == {
        "Invocations": 8,
        "Errors": 2,
        "Throttles": 1,
        "ColdStarts": 2,
        "DurationCount": 8,
    }
    busiest = max(points, key=lambda point: point["Invocations"])
    assert busiest["DurationMaxMs"] >= busiest["DurationAverageMs"] > 0
    assert points[-1]["Timestamp"] > points[0]["Timestamp"]


def test_concurrent_executions_while_running(live: Any) -> None:
    lam = client(live.endpoint)
    name = deploy(lam)
    labels = {"region": REGION, "function": name, "version": "$LATEST"}
    worker = threading.Thread(target=invoke, args=(lam, name, {"sleep": 3}))
    worker.start()
    try:
        running = poll(
            lambda: scrape(live.endpoint)[0],
            lambda s: sample(s, "lamina_concurrent_executions", **labels) == 1,
            timeout=20,
        )
        assert sample(running, "lamina_concurrent_executions", **labels) == 1
    finally:
        worker.join()
    after = scrape(live.endpoint)[0]
    assert sample(after, "lamina_concurrent_executions", **labels) == 0
    assert sample(after, "lamina_duration_seconds_bucket", le="2.5", **labels) == 0
    assert sample(after, "lamina_duration_seconds_bucket", le="5.0", **labels) == 1


def test_async_queue_and_outcomes(live: Any) -> None:
    lam, queues = client(live.endpoint), Queues(live.endpoint)
    dead_name = unique_name("dead")
    dead = queues.create(dead_name)
    name = deploy(lam)
    lam.update_function_configuration(FunctionName=name, DeadLetterConfig={"TargetArn": dead})
    wait_active(lam, name)
    lam.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    labels = {"region": REGION, "function": name}
    # One slow event holds the only environment... and the queue shows the one behind it.
    lam.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    for event in ({"sleep": 2}, {"n": 2}):
        lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event).encode())
    waiting = poll(
        lambda: scrape(live.endpoint)[0],
        lambda s: (
            sample(s, "lamina_async_in_flight", **labels) >= 1
            and sample(s, "lamina_async_oldest_event_age_seconds", **labels) > 0
        ),
        timeout=20,
    )
    assert sample(waiting, "lamina_async_queue_depth", **labels) >= 1
    poll(
        lambda: async_stats(live.endpoint, name), lambda s: s["pending"] == 0 and not s["in_flight"]
    )
    lam.delete_function_concurrency(FunctionName=name)

    lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"fail": "always"}')
    queues.wait(dead_name, 1)
    samples = poll(
        lambda: scrape(live.endpoint)[0],
        lambda s: sample(s, "lamina_async_events_total", outcome="failed", **labels) == 1,
    )
    stats = async_stats(live.endpoint, name)  # the durable counts agree
    for outcome, count in stats["outcomes"].items():
        assert sample(samples, "lamina_async_events_total", outcome=outcome, **labels) == count
    assert sample(samples, "lamina_async_events_total", outcome="retried", **labels) == 1
    assert sample(samples, "lamina_async_events_total", outcome="dead_lettered", **labels) == 1
    assert sample(samples, "lamina_async_queue_depth", **labels) == 0
    assert sample(samples, "lamina_async_oldest_event_age_seconds", **labels) == 0


def test_time_series_needs_a_signature_and_valid_minutes(live: Any) -> None:
    unsigned = raw_request(live.endpoint, "GET", "/lamina/functions/x/metrics", sign=False)
    assert unsigned.status == 403
    bad = raw_request(live.endpoint, "GET", "/lamina/functions/x/metrics", query="minutes=0")
    assert bad.status == 400
    assert bad.error_type == "InvalidParameterValueException"
    empty = raw_request(live.endpoint, "GET", "/lamina/functions/x/metrics", query="minutes=1440")
    assert empty.status == 200
    points = empty.json()["Points"]
    assert len(points) == 1440
    assert all(point["Invocations"] == 0 for point in points)
