"""One-minute buckets over 24 hours, driven by a manual clock; and the metrics that feed them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from lamina.clock import ManualClock
from lamina.observability.metrics import EnvironmentCounts, Metrics, QueueCounts
from lamina.observability.timeseries import MINUTES, TimeSeries

START = 1_700_000_040.0  # a whole minute


def test_current_minute_bucket() -> None:
    clock = ManualClock(START)
    series = TimeSeries(clock.time)
    series.invoked("r", "f", 0.010, error=False, cold=True)
    series.invoked("r", "f", 0.030, error=True, cold=False)
    series.throttled("r", "f")
    points = series.points("r", "f", 3)
    assert len(points) == 3
    assert points[0]["Invocations"] == points[1]["Invocations"] == 0
    last = points[-1]
    assert last["Timestamp"] == "2023-11-14T22:14:00Z"
    assert (last["Invocations"], last["Errors"], last["Throttles"], last["ColdStarts"]) == (
        2,
        1,
        1,
        1,
    )
    assert last["DurationCount"] == 2
    assert last["DurationSumMs"] == 40.0
    assert last["DurationMaxMs"] == 30.0
    assert last["DurationAverageMs"] == 20.0
    assert points[0]["DurationAverageMs"] is None


def test_minutes_roll_and_old_buckets_are_replaced() -> None:
    clock = ManualClock(START)
    series = TimeSeries(clock.time)
    series.invoked("r", "f", 0.001, error=False, cold=False)
    clock.advance(60)
    series.invoked("r", "f", 0.001, error=False, cold=False)
    series.invoked("r", "f", 0.001, error=False, cold=False)
    assert [p["Invocations"] for p in series.points("r", "f", 2)] == [1, 2]
    clock.advance(MINUTES * 60)  # a day later the same slots come round again
    series.invoked("r", "f", 0.001, error=False, cold=False)
    assert [p["Invocations"] for p in series.points("r", "f", MINUTES)][-2:] == [0, 1]
    assert sum(p["Invocations"] for p in series.points("r", "f", MINUTES)) == 1


def test_limits_and_isolation() -> None:
    clock = ManualClock(START)
    series = TimeSeries(clock.time)
    series.invoked("r", "f", 0.001, error=False, cold=False)
    assert len(series.points("r", "f", 0)) == 1
    assert len(series.points("r", "f", 10_000)) == MINUTES
    assert series.points("r", "other", 1)[0]["Invocations"] == 0
    assert series.points("r2", "f", 1)[0]["Invocations"] == 0
    series.forget("r", "f")
    assert series.points("r", "f", 1)[0]["Invocations"] == 0


def test_metrics_exposition_parses() -> None:
    clock = ManualClock(START)
    metrics = Metrics(clock.time)
    key = ("us-east-1", "f", "$LATEST")
    metrics.invoked(key, 0.0004, 0.004, error=False, cold=True)
    metrics.invoked(key, 0.020, None, error=True, cold=False)
    metrics.throttled(key)
    metrics.async_outcomes("us-east-1", "f", ["retried", "dead_lettered", "retried"])
    metrics.read_live_state(
        lambda: {key: EnvironmentCounts(1, 2, 3, 4)},
        lambda: {("us-east-1", "f"): QueueCounts(5, 1, 12.5)},
    )
    families = {f.name: f for f in text_string_to_metric_families(metrics.exposition().decode())}
    labels = {"region": "us-east-1", "function": "f", "version": "$LATEST"}

    def value(family: str, sample: str, **extra: str) -> float:
        wanted = {**labels, **extra}
        for found in families[family].samples:
            if found.name == sample and found.labels == wanted:
                return found.value
        raise AssertionError(f"no {sample} {wanted}")

    assert value("lamina_invocations", "lamina_invocations_total") == 2
    assert value("lamina_errors", "lamina_errors_total") == 1
    assert value("lamina_throttles", "lamina_throttles_total") == 1
    assert value("lamina_cold_starts", "lamina_cold_starts_total") == 1
    duration = "lamina_duration_seconds"
    assert value(duration, duration + "_count") == 2
    assert value(duration, duration + "_bucket", le="0.0005") == 1
    assert value(duration, duration + "_bucket", le="0.025") == 2
    assert value(duration, duration + "_bucket", le="+Inf") == 2
    assert abs(value(duration, duration + "_sum") - 0.0204) < 1e-9
    init = "lamina_init_duration_seconds"
    assert value(init, init + "_count") == 1
    assert value(init, init + "_bucket", le="0.0025") == 0
    assert value(init, init + "_bucket", le="0.005") == 1
    assert value("lamina_concurrent_executions", "lamina_concurrent_executions") == 4
    assert (
        value(
            "lamina_provisioned_concurrent_executions", "lamina_provisioned_concurrent_executions"
        )
        == 3
    )
    del labels["version"]
    assert value("lamina_async_queue_depth", "lamina_async_queue_depth") == 5
    assert (
        value("lamina_async_oldest_event_age_seconds", "lamina_async_oldest_event_age_seconds")
        == 12.5
    )
    assert value("lamina_async_events", "lamina_async_events_total", outcome="retried") == 2
    assert "process_resident_memory_bytes" in families
    assert metrics.series.points("us-east-1", "f", 1)[0]["Throttles"] == 1
