"""Invocation metrics, exported in the Prometheus text format.

The hot path (`invoked`, `throttled`, `async_outcomes`) only touches plain counters in slotted
objects: a dictionary lookup, a few integer additions and one bisect per histogram; no lock and
no I/O (the event loop is the only writer). `prometheus_client` renders them at scrape time
through a custom collector, together with gauges read from live state (busy environments, async
queues) and its own process metrics (CPU, RSS, open file descriptors).

Labels: `region`, `function` and `version` (the executed version, `$LATEST` or a number) for
invocation metrics; `region` and `function` for the async queue, whose events name a function
and run whatever version their qualifier resolves to. Cardinality is bounded by the versions
that exist; `forget` drops a deleted function's series.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from lamina.observability.timeseries import TimeSeries

Key = tuple[str, str, str]  # (region, function, version)
FunctionKey = tuple[str, str]  # (region, function)

# Seconds. Lambda runs from sub-millisecond handlers to 900 s timeouts.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
)  # fmt: skip
INIT_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

# The classic text format every Prometheus version scrapes (our names need no escaping).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, slots=True)
class EnvironmentCounts:
    """A version's environments right now."""

    busy: int  # on-demand environments running an invocation
    idle: int  # on-demand environments kept warm
    provisioned_busy: int  # provisioned environments running an invocation
    provisioned_ready: int  # provisioned environments initialized (busy or idle)


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """A function's async queue right now."""

    pending: int  # accepted, waiting to run (ready or backing off)
    in_flight: int
    oldest_age_s: float | None


EnvironmentsSource = Callable[[], Mapping[Key, EnvironmentCounts]]
QueuesSource = Callable[[], Mapping[FunctionKey, QueueCounts]]


class _Histogram:
    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # first bucket with le >= value
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        buckets: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            running += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
        return buckets


class _Version:
    """Counters of one function version."""

    __slots__ = ("cold_starts", "duration", "errors", "init", "invocations", "throttles")

    def __init__(self) -> None:
        self.invocations = 0
        self.errors = 0
        self.throttles = 0
        self.cold_starts = 0
        self.duration = _Histogram(DURATION_BUCKETS)
        self.init = _Histogram(INIT_BUCKETS)


class Metrics:
    """The server's invocation metrics and their time series."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.series = TimeSeries(clock)
        self._versions: dict[Key, _Version] = {}
        self._async: dict[FunctionKey, dict[str, int]] = {}
        self._environments: EnvironmentsSource = dict
        self._queues: QueuesSource = dict
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def read_live_state(self, environments: EnvironmentsSource, queues: QueuesSource) -> None:
        """Where the gauges come from at scrape time."""
        self._environments = environments
        self._queues = queues

    # --- the hot path --------------------------------------------------------------------------

    def invoked(
        self, key: Key, duration_s: float, init_s: float | None, error: bool, cold: bool
    ) -> None:
        """One invocation ran on an environment (an init failure counts, as an error)."""
        version = self._versions.get(key) or self._version(key)
        version.invocations += 1
        version.duration.observe(duration_s)
        if error:
            version.errors += 1
        if cold:
            version.cold_starts += 1
            if init_s is not None:
                version.init.observe(init_s)
        self.series.invoked(key[0], key[1], duration_s, error, cold)

    def throttled(self, key: Key) -> None:
        """An invocation was refused with TooManyRequests."""
        version = self._versions.get(key) or self._version(key)
        version.throttles += 1
        self.series.throttled(key[0], key[1])

    def async_outcomes(self, region: str, name: str, outcomes: Iterable[str]) -> None:
        """Outcomes of async events, once committed: retried, dead_lettered, destined, ..."""
        counts = self._async.get((region, name))
        if counts is None:
            counts = self._async[(region, name)] = {}
        for outcome in outcomes:
            counts[outcome] = counts.get(outcome, 0) + 1

    def _version(self, key: Key) -> _Version:
        version = self._versions[key] = _Version()
        return version

    # --- reads ---------------------------------------------------------------------------------

    def forget(self, region: str, name: str) -> None:
        """A deleted function leaves no series behind."""
        for key in [k for k in self._versions if k[:2] == (region, name)]:
            del self._versions[key]
        self._async.pop((region, name), None)
        self.series.forget(region, name)

    def exposition(self) -> bytes:
        """The Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry)

    async def exposition_off_loop(self) -> bytes:
        """The same, with the values read on the event loop (the only writer) and the text
        rendered in a worker thread: ~100 bytes per sample, ~40 samples per version, which
        takes tens of milliseconds for a few hundred versions."""
        families = list(self.registry.collect())
        return await asyncio.to_thread(generate_latest, _Collected(families))

    def snapshot(self) -> dict[Key, tuple[int, int, int, int]]:
        """(invocations, errors, throttles, cold starts) per version, for tests and tools."""
        return {
            key: (v.invocations, v.errors, v.throttles, v.cold_starts)
            for key, v in self._versions.items()
        }


class _Collected(Collector):
    """Families already read."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


class _Collector(Collector):
    """Renders the counters and reads the gauges when Prometheus scrapes."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._invocation_families()
        yield from self._environment_families()
        yield from self._queue_families()

    def _invocation_families(self) -> Iterator[Metric]:
        labels = ["region", "function", "version"]
        invocations = CounterMetricFamily(
            "lamina_invocations", "Invocations that ran (including function errors).", labels=labels
        )
        errors = CounterMetricFamily(
            "lamina_errors", "Invocations that ended in a function error.", labels=labels
        )
        throttles = CounterMetricFamily(
            "lamina_throttles", "Invocations refused with TooManyRequests.", labels=labels
        )
        cold_starts = CounterMetricFamily(
            "lamina_cold_starts", "Invocations that started a new environment.", labels=labels
        )
        duration = HistogramMetricFamily(
            "lamina_duration_seconds",
            "Time an environment spent on an invocation (AWS's Duration).",
            labels=labels,
        )
        init = HistogramMetricFamily(
            "lamina_init_duration_seconds",
            "Init Duration of cold starts (the runtime's setup and the handler's import).",
            labels=labels,
        )
        for key, version in list(self._metrics._versions.items()):
            values = list(key)
            invocations.add_metric(values, version.invocations)
            errors.add_metric(values, version.errors)
            throttles.add_metric(values, version.throttles)
            cold_starts.add_metric(values, version.cold_starts)
            duration.add_metric(values, version.duration.cumulative(), version.duration.total)
            init.add_metric(values, version.init.cumulative(), version.init.total)
        yield from (invocations, errors, throttles, cold_starts, duration, init)

    def _environment_families(self) -> Iterator[Metric]:
        labels = ["region", "function", "version"]
        concurrent = GaugeMetricFamily(
            "lamina_concurrent_executions",
            "Invocations running now (on-demand and provisioned).",
            labels=labels,
        )
        provisioned_used = GaugeMetricFamily(
            "lamina_provisioned_concurrent_executions",
            "Invocations running now on provisioned environments.",
            labels=labels,
        )
        provisioned_ready = GaugeMetricFamily(
            "lamina_provisioned_environments",
            "Provisioned environments initialized (busy or idle).",
            labels=labels,
        )
        idle = GaugeMetricFamily(
            "lamina_idle_environments", "On-demand environments kept warm.", labels=labels
        )
        for key, counts in self._metrics._environments().items():
            values = list(key)
            concurrent.add_metric(values, counts.busy + counts.provisioned_busy)
            provisioned_used.add_metric(values, counts.provisioned_busy)
            provisioned_ready.add_metric(values, counts.provisioned_ready)
            idle.add_metric(values, counts.idle)
        yield from (concurrent, provisioned_used, provisioned_ready, idle)

    def _queue_families(self) -> Iterator[Metric]:
        labels = ["region", "function"]
        depth = GaugeMetricFamily(
            "lamina_async_queue_depth", "Async events accepted and waiting to run.", labels=labels
        )
        in_flight = GaugeMetricFamily(
            "lamina_async_in_flight", "Async events running now.", labels=labels
        )
        age = GaugeMetricFamily(
            "lamina_async_oldest_event_age_seconds",
            "Age of the oldest waiting async event (0 when none waits).",
            labels=labels,
        )
        outcomes = CounterMetricFamily(
            "lamina_async_events",
            "Async event outcomes since the server started: succeeded, failed, expired, "
            "discarded, retried, throttled, dead_lettered, destined (destination deliveries), "
            "delivery_failed.",
            labels=[*labels, "outcome"],
        )
        for (region, name), counts in self._metrics._queues().items():
            depth.add_metric([region, name], counts.pending)
            in_flight.add_metric([region, name], counts.in_flight)
            age.add_metric([region, name], counts.oldest_age_s or 0.0)
        for (region, name), found in list(self._metrics._async.items()):
            for outcome, count in sorted(found.items()):
                outcomes.add_metric([region, name, outcome], count)
        yield from (depth, in_flight, age, outcomes)
