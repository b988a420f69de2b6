"""Function log benchmarks (issue 6), each with a baseline measured in the same run.

    .venv/bin/python bench/logs.py              # needs root for strict isolation; grep

Figures and goals:
  warm invoke p50 through the HTTP API of a handler printing 10 lines, against the same
      handler printing nothing (the log path's cost on the hot path)       ratio <= 1.1
  FilterLogEvents for a rare term over 1,000,000 stored events (one call, through the HTTP API,
      signed, page cache warm)                                              <= 1 s, and
      ratio <= 3 against `grep -F -c` over the same events as one text file

How the million events are made: the benchmark writes them through the storage layer
(`FileLogSink.write` + `flush`, exactly what environments use) into `<data>/logs` before it
starts a server on that data directory: 4 streams of 250,000 events of ~90 bytes over the last
30 minutes, 100 of them (every 10,000th) containing the term. The same messages, one per line,
go to a text file for grep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from _common import (
    CREDENTIALS,
    Client,
    Prepared,
    create,
    lamina_server,
    signed,
    summary_ms,
)
from lamina.observability.logstore import FileLogSink

QUIET = b"def handler(event, context):\n    return 'ok'\n"
CHATTY = (
    b"def handler(event, context):\n"
    b"    for i in range(10):\n"
    b"        print('processing item', i, 'of the batch for request', context.aws_request_id)\n"
    b"    return 'ok'\n"
)
GROUP = "/aws/lambda/bench-filter"
TERM = "NEEDLE"
EVENTS = 1_000_000
STREAMS = 4
EVERY = 10_000  # one event in EVERY carries the term


def invoke_request(endpoint: str, name: str) -> Prepared:
    return signed(endpoint, "POST", f"/2015-03-31/functions/{name}/invocations", b"{}")


def logs_request(endpoint: str, operation: str, body: dict[str, object]) -> Prepared:
    """A CloudWatch Logs (awsJson1_1) request signed as botocore signs it."""
    data = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"Logs_20140328.{operation}",
    }
    request = AWSRequest(method="POST", url=endpoint + "/", data=data, headers=headers)
    SigV4Auth(CREDENTIALS, "logs", "us-east-1").add_auth(request)
    return Prepared("POST", "/", dict(request.headers.items()), data)


# --- 1: the log path on warm invokes -----------------------------------------------------------


def bench_printing(rounds: int, per_round: int) -> None:
    with tempfile.TemporaryDirectory() as data, lamina_server(Path(data)) as endpoint:
        create(endpoint, "quiet", QUIET)
        create(endpoint, "chatty", CHATTY)
        client = Client(endpoint)
        requests = {n: invoke_request(endpoint, n) for n in ("quiet", "chatty")}
        samples: dict[str, list[float]] = {"quiet": [], "chatty": []}
        for request in requests.values():  # warm both environments
            for _ in range(100):
                assert client.send(request)[0] == 200
        for _ in range(rounds):  # interleaved blocks: drift hits both alike
            for name, request in requests.items():
                for _ in range(per_round):
                    start = time.perf_counter()
                    status, raw = client.send(request)
                    samples[name].append(time.perf_counter() - start)
                    assert status == 200, raw
        client.close()
    quiet_p50, quiet_p99 = summary_ms(samples["quiet"])
    chatty_p50, chatty_p99 = summary_ms(samples["chatty"])
    ratio = chatty_p50 / quiet_p50
    print(
        f"warm invoke printing 10 lines p50 {chatty_p50:.3f} ms (p99 {chatty_p99:.3f}); "
        f"printing nothing p50 {quiet_p50:.3f} ms (p99 {quiet_p99:.3f}); "
        f"ratio {ratio:.3f} (goal <= 1.1) {'OK' if ratio <= 1.1 else 'MISSED'}"
    )


# --- 2: FilterLogEvents over a million events ---------------------------------------------------


def message(i: int) -> str:
    term = f" {TERM}" if i % EVERY == 0 else ""
    return (
        f"[INFO]\t2024-05-01T12:00:00.{i % 1000:03d}Z\treq-{i:08d}\t"
        f"processed order {i * 7 % 100_003} for user-{i % 977}{term} in {i % 250} ms"
    )


def generate(data_dir: Path, text_file: Path) -> int:
    """Write the events through the storage layer, and as text for grep; total bytes."""
    sink = FileLogSink(data_dir / "logs")
    now = int(time.time() * 1000)
    per_stream = EVENTS // STREAMS
    span = 30 * 60 * 1000
    with text_file.open("w", encoding="utf-8") as text:
        for s in range(STREAMS):
            stream = f"2024/05/01/[$LATEST]{s:032x}"
            for base in range(0, per_stream, 10_000):
                batch = []
                for j in range(base, base + 10_000):
                    i = s * per_stream + j
                    batch.append((now - span + j * span // per_stream, message(i)))
                sink.write(GROUP, stream, batch)
                sink.flush()
                text.writelines(m + "\n" for _, m in batch)
    asyncio.run(sink.close())
    return text_file.stat().st_size


def median_seconds(run: object, times: int) -> float:
    assert callable(run)
    run()  # warm the page cache and the code paths
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        run()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def bench_filter(times: int) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        text_file = Path(scratch) / "events.txt"
        started = time.perf_counter()
        size = generate(data_dir, text_file)
        made = time.perf_counter() - started
        print(f"generated {EVENTS:,} events ({size / 1e6:.0f} MB of text) in {made:.1f} s")

        def grep() -> None:
            done = subprocess.run(
                ["grep", "-F", "-c", TERM, str(text_file)], capture_output=True, check=True
            )
            assert int(done.stdout) == EVENTS // EVERY

        grep_s = median_seconds(grep, times)
        with lamina_server(data_dir) as endpoint:
            client = Client(endpoint)
            request = logs_request(
                endpoint, "FilterLogEvents", {"logGroupName": GROUP, "filterPattern": TERM}
            )

            def filter_events() -> None:
                status, raw = client.send(request)
                assert status == 200, raw
                answer = json.loads(raw)
                assert len(answer["events"]) == EVENTS // EVERY, len(answer["events"])
                assert "nextToken" not in answer

            lamina_s = median_seconds(filter_events, times)
            client.close()
    ratio = lamina_s / grep_s
    print(
        f"FilterLogEvents '{TERM}' over {EVENTS:,} events: {lamina_s * 1000:.0f} ms "
        f"(goal <= 1000 ms) {'OK' if lamina_s <= 1 else 'MISSED'}; grep -F -c "
        f"{grep_s * 1000:.0f} ms; ratio {ratio:.2f} (goal <= 3) {'OK' if ratio <= 3 else 'MISSED'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved invoke blocks")
    parser.add_argument("--per-round", type=int, default=200, help="invokes per block")
    parser.add_argument("--times", type=int, default=5, help="timed FilterLogEvents calls")
    args = parser.parse_args()
    bench_printing(args.rounds, args.per_round)
    bench_filter(args.times)


if __name__ == "__main__":
    main()
