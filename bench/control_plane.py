"""Control-plane latency against a bare Starlette endpoint measured in the same run.

    .venv/bin/python bench/control_plane.py [--functions 10000] [--samples 2000]

Figures (issue 2): CreateFunction with a 1 MB zip, p50 (goal <= 25 ms); GetFunction p50
(goal <= 3x the bare endpoint); a ListFunctions page of 50 with 10,000 functions stored, p50
(goal <= 5x the bare endpoint). Requests are signed once with botocore and replayed over one
keep-alive connection, so client-side cost is the same for Lamina and the baseline.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import tempfile
import uuid
from pathlib import Path

import orjson

from _common import (
    Client,
    Prepared,
    bare_server,
    lamina_server,
    one_megabyte_zip,
    signed,
    summary_ms,
    time_calls,
    zip_of,
)

ROLE = "arn:aws:iam::000000000000:role/bench"


def create_body(name: str, zip_bytes: bytes) -> bytes:
    return orjson.dumps(
        {
            "FunctionName": name,
            "Runtime": "python3.11",
            "Role": ROLE,
            "Handler": "app.handler",
            "Code": {"ZipFile": base64.b64encode(zip_bytes).decode()},
        }
    )


def populate(endpoint: str, count: int, region: str) -> None:
    """Store `count` small functions in `region` (8 connections in parallel)."""
    small = zip_of({"app.py": b"def handler(e, c):\n    return e\n"})

    def worker(indices: range) -> None:
        client = Client(endpoint)
        for index in indices:
            body = create_body(f"f{index:06d}", small)
            status, raw = client.send(
                signed(endpoint, "POST", "/2015-03-31/functions", body, region)
            )
            assert status == 201, raw
        client.close()

    chunks = [range(i, count, 8) for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(worker, chunks))


def bench_create(endpoint: str, samples: int) -> list[float]:
    client = Client(endpoint)
    payload = one_megabyte_zip()
    requests = [
        signed(
            endpoint, "POST", "/2015-03-31/functions", create_body(f"c-{uuid.uuid4().hex}", payload)
        )
        for _ in range(samples + 5)
    ]
    queue = iter(requests)

    def call() -> None:
        status, raw = client.send(next(queue))
        assert status == 201, raw

    result = time_calls(call, samples, warmup=5)
    client.close()
    return result


def bench_replay(endpoint: str, request: Prepared, samples: int) -> list[float]:
    client = Client(endpoint)

    def call() -> None:
        status, raw = client.send(request)
        assert status == 200, raw

    result = time_calls(call, samples)
    client.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--functions", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=2_000)
    parser.add_argument("--create-samples", type=int, default=200)
    args = parser.parse_args()

    with bare_server() as bare:
        base = bench_replay(bare, Prepared("GET", "/hello", {}, b""), args.samples)
    with tempfile.TemporaryDirectory() as data, lamina_server(Path(data)) as endpoint:
        populate(endpoint, args.functions, "eu-west-1")
        create = bench_create(endpoint, args.create_samples)
        get = bench_replay(
            endpoint,
            signed(endpoint, "GET", "/2015-03-31/functions/f000042", region="eu-west-1"),
            args.samples,
        )
        page = bench_replay(
            endpoint,
            signed(endpoint, "GET", "/2015-03-31/functions?MaxItems=50", region="eu-west-1"),
            args.samples // 4,
        )
    base_p50 = summary_ms(base)[0]
    rows = [
        ("bare Starlette JSON endpoint (baseline)", base, None),
        ("CreateFunction, 1 MB zip", create, "<= 25 ms p50"),
        ("GetFunction", get, "<= 3x baseline p50"),
        (f"ListFunctions page of 50, {args.functions:,} stored", page, "<= 5x baseline p50"),
    ]
    print(f"{'figure':<48} {'p50 ms':>8} {'p99 ms':>8} {'p50/base':>9}  goal")
    for label, samples, goal in rows:
        p50, p99 = summary_ms(samples)
        print(f"{label:<48} {p50:8.3f} {p99:8.3f} {p50 / base_p50:9.2f}  {goal or ''}")


if __name__ == "__main__":
    main()
