"""Async invocation benchmarks (issue 5), with Celery as the baseline measured in the same run.

    .venv/bin/python bench/async.py          # needs root (strict isolation), `wrk`, local Redis

Figures and goals:
  async throughput, accepted (202) to handler done, durable queue, trivial handler
      >= 2,000 events/s on 2 cores; ratio to Celery on the local Redis broker running the same
      trivial task >= 1.0
  202 latency p50 / p99 under that load        <= 1 ms / <= 5 ms
      (no baseline in the issue; for scale, the bare Starlette echo route on the same server
      stack answers the same paced load in the same run: its p50 is the machine's floor for an
      HTTP round trip at that rate, before any handler, commit or fsync)

Lamina: wrk sends signed `InvocationType: Event` requests from 16 connections for a fixed time;
throughput counts the events whose handler finished, from the first request until the queue is
empty again. Celery: as many tasks sent from 16 producer threads, counted by the worker in Redis,
from the first send until the last task finished (worker: prefork, one process per core).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from _common import (
    ROOT,
    Client,
    Prepared,
    WrkResult,
    bare_server,
    create,
    lamina_server,
    signed,
    wrk_run,
)

HELLO = b"def handler(event, context):\n    return {'hello': 'world'}\n"
PAYLOAD = b'{"hello":"world"}'
REDIS = "redis://127.0.0.1:6379/15"
PAUSE_MS = 7  # 16 connections pausing 7 ms before each request offer about 2,000 events/s


def async_stats(endpoint: str, name: str) -> dict[str, object]:
    client = Client(endpoint)
    try:
        status, raw = client.send(signed(endpoint, "GET", f"/lamina/functions/{name}/async"))
        assert status == 200, raw
        stats: dict[str, object] = json.loads(raw)
        return stats
    finally:
        client.close()


def succeeded(stats: dict[str, object]) -> int:
    outcomes = stats["outcomes"]
    assert isinstance(outcomes, dict)
    return int(outcomes.get("succeeded", 0))


def drained(endpoint: str, name: str, timeout: float = 300.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = async_stats(endpoint, name)
        if stats["pending"] == 0 and stats["in_flight"] == 0:
            return stats
        time.sleep(0.02)  # polling the queue's depth: there is no completion event to wait on
    raise RuntimeError("the async queue did not drain")


@dataclass(frozen=True)
class AsyncFigures:
    rate: float  # events/s, accepted to handler done, at saturation
    events: int
    saturated: WrkResult  # the 202s while wrk sends as fast as the server answers
    paced: WrkResult  # the 202s at about the goal's rate (2,000 events/s)


def lamina_async(seconds: int) -> AsyncFigures:
    with tempfile.TemporaryDirectory() as data, lamina_server(Path(data)) as endpoint:
        create(endpoint, "trivial", HELLO)
        request = signed(endpoint, "POST", "/2015-03-31/functions/trivial/invocations", PAYLOAD)
        request.headers["X-Amz-Invocation-Type"] = "Event"  # unsigned headers are allowed
        wrk_run(endpoint, request, 2)  # warm: environments, connections, caches
        before = succeeded(drained(endpoint, "trivial"))
        start = time.perf_counter()
        load = wrk_run(endpoint, request, seconds)
        after = succeeded(drained(endpoint, "trivial"))
        elapsed = time.perf_counter() - start
        events = after - before
        paced = wrk_run(endpoint, request, seconds, pause_ms=PAUSE_MS)
        drained(endpoint, "trivial")
        return AsyncFigures(events / elapsed, events, load, paced)


def echo_paced(seconds: int) -> WrkResult:
    """The bare echo route on the same stack, at the same paced load (the machine's floor)."""
    with bare_server() as bare:
        echo = Prepared("POST", "/echo", {"Content-Type": "application/json"}, PAYLOAD)
        wrk_run(bare, echo, 2)  # warm
        return wrk_run(bare, echo, seconds, pause_ms=PAUSE_MS)


def celery_baseline(events: int, producers: int = 16) -> float:
    """Tasks/s from the first send until the worker finished the last one."""
    env = {**os.environ, "BENCH_REDIS": REDIS, "PYTHONPATH": str(ROOT / "bench")}
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("celery")), "-A", "_celery_app", "worker",
            "--concurrency", str(os.cpu_count() or 2), "--pool", "prefork",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    sys.path.insert(0, str(ROOT / "bench"))
    os.environ["BENCH_REDIS"] = REDIS
    from _celery_app import COUNTER, trivial

    counter = redis.Redis.from_url(REDIS)
    try:
        counter.flushdb()
        trivial.delay({"hello": "warm"})  # the worker is up once this one is done
        _wait_count(counter, COUNTER, 1, 60)
        counter.set(COUNTER, 0)
        share = events // producers

        def produce() -> None:
            for _ in range(share):
                trivial.delay({"hello": "world"})

        threads = [threading.Thread(target=produce) for _ in range(producers)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _wait_count(counter, COUNTER, share * producers, 300)
        return share * producers / (time.perf_counter() - start)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        counter.flushdb()


def _wait_count(counter: redis.Redis, key: str, target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while int(counter.get(key) or 0) < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"celery finished {counter.get(key)!r} of {target} tasks")
        time.sleep(0.01)  # polling a counter in Redis: Celery has no cheaper completion signal


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    lamina = lamina_async(args.seconds)
    floor = echo_paced(args.seconds)
    baseline = celery_baseline(lamina.events)
    rate, paced, saturated = lamina.rate, lamina.paced, lamina.saturated
    print(f"async throughput   {rate:8.0f} events/s ({lamina.events} events)   goal >= 2000")
    print(f"celery baseline    {baseline:8.0f} tasks/s   ratio {rate / baseline:.2f}   goal >= 1.0")
    print(
        f"202 latency at {paced.requests_per_s:.0f}/s   p50 {paced.latency_ms['50%']:.3f} ms   "
        f"p99 {paced.latency_ms['99%']:.3f} ms   goal <= 1 / <= 5 ms"
    )
    print(
        f"baseline: bare echo route at {floor.requests_per_s:.0f}/s   "
        f"p50 {floor.latency_ms['50%']:.3f} ms   p99 {floor.latency_ms['99%']:.3f} ms   "
        f"(202 p50 ratio {paced.latency_ms['50%'] / floor.latency_ms['50%']:.2f})"
    )
    print(
        f"202 latency at saturation ({saturated.requests_per_s:.0f}/s, 16 connections)   "
        f"p50 {saturated.latency_ms['50%']:.3f} ms   p99 {saturated.latency_ms['99%']:.3f} ms"
    )


if __name__ == "__main__":
    main()
