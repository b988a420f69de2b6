"""Runtime benchmarks (issue 4), each with its baseline measured in the same run.

    .venv/bin/python bench/runtimes.py        # needs root (strict isolation) and gcc

Figures and goals:
  `provided` (C bootstrap) warm invoke p50 through the HTTP API   <= 0.6 ms; ratio to the
      built-in Python runtime's warm p50 <= 1.5
  nodejs20.x cold start (hello world) through the HTTP API; ratio to a posix_spawn of
      `node -e` requiring and calling the same handler file, waited for <= 1.2
  nodejs20.x warm invoke p50 through the HTTP API <= 0.6 ms; ratio to python3.11's <= 1.5

Both functions get 1,769 MB (one full vCPU, as in AWS) and are invoked alternately, call by
call, from one keep-alive client, so machine noise lands on both equally.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

from _common import ROOT, Client, create_zip, lamina_server, signed, summary_ms

HELLO = b"def handler(event, context):\n    return {'hello': 'world'}\n"
NODE_HELLO = b"exports.handler = async (event, context) => ({ hello: 'world' });\n"
PAYLOAD = b'{"hello":"world"}'


def c_bootstrap_zip(workdir: Path) -> bytes:
    binary = workdir / "bootstrap"
    source = ROOT / "tests" / "functions" / "provided" / "bootstrap.c"
    subprocess.run(["gcc", "-O2", "-o", str(binary), str(source)], check=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o100755 << 16
        archive.writestr(info, binary.read_bytes())
    return buffer.getvalue()


def python_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HELLO)
    return buffer.getvalue()


def node_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.js", NODE_HELLO)
    return buffer.getvalue()


def node_cold_starts(endpoint: str, workdir: Path, count: int) -> tuple[list[float], list[float]]:
    """(Lamina cold starts, `node -e` spawns), taken alternately so noise lands on both."""
    node = shutil.which("node")
    assert node is not None, "needs Node.js"
    node = os.path.realpath(node)
    handler = workdir / "index.js"
    handler.write_bytes(NODE_HELLO)
    script = f"require({str(handler)!r}).handler({{}}, {{}}).then((r) => JSON.stringify(r))"
    argv = [node, "-e", script]
    names = [f"node-cold-{i}" for i in range(count)]
    for name in names:
        create_zip(endpoint, name, node_zip(), "nodejs20.x", "index.handler", 1769)
    client = Client(endpoint)
    lamina: list[float] = []
    spawned: list[float] = []
    for name in names:
        request = signed(endpoint, "POST", f"/2015-03-31/functions/{name}/invocations", PAYLOAD)
        time.sleep(0.05)  # stems are made ahead of demand; give the pool its steady state
        start = time.perf_counter()
        status, raw = client.send(request)
        lamina.append(time.perf_counter() - start)
        assert status == 200, raw
        assert b"world" in raw, raw
        start = time.perf_counter()
        pid = os.posix_spawn(node, argv, dict(os.environ))
        _, code = os.waitpid(pid, 0)
        spawned.append(time.perf_counter() - start)
        assert code == 0
    client.close()
    return lamina, spawned


def alternate(endpoint: str, names: list[str], count: int) -> dict[str, list[float]]:
    client = Client(endpoint)
    requests = {
        n: signed(endpoint, "POST", f"/2015-03-31/functions/{n}/invocations", PAYLOAD)
        for n in names
    }
    samples: dict[str, list[float]] = {n: [] for n in names}
    for i in range(count + 100):
        for name in names:
            start = time.perf_counter()
            status, raw = client.send(requests[name])
            elapsed = time.perf_counter() - start
            assert status == 200, raw
            if i >= 100:  # warm-up
                samples[name].append(elapsed)
    client.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--warm", type=int, default=3000)
    parser.add_argument("--cold", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, lamina_server(Path(tmp) / "data") as endpoint:
        create_zip(endpoint, "python", python_zip(), "python3.11", "app.handler", 1769)
        create_zip(endpoint, "c", c_bootstrap_zip(Path(tmp)), "provided.al2023", "x", 1769)
        create_zip(endpoint, "node", node_zip(), "nodejs20.x", "index.handler", 1769)
        samples = alternate(endpoint, ["python", "c", "node"], args.warm)
        cold, spawned = node_cold_starts(endpoint, Path(tmp), args.cold)
    py50, py99 = summary_ms(samples["python"])
    c50, c99 = summary_ms(samples["c"])
    n50, n99 = summary_ms(samples["node"])
    cold50, cold99 = summary_ms(cold)
    spawn50, spawn99 = summary_ms(spawned)
    print(f"{'figure':<52} {'value':>20} {'ratio':>6}  goal")
    print(f"{'baseline: python3.11 warm invoke, p50 / p99':<52} {py50:>9.3f} / {py99:.3f} ms")
    print(
        f"{'provided (C bootstrap) warm invoke, p50 / p99':<52} {c50:>9.3f} / {c99:.3f} ms "
        f"{c50 / py50:>6.2f}  <= 0.6 ms; ratio <= 1.5"
    )
    print(f"{'nodejs20.x warm invoke, p50 / p99':<52} {n50:>9.3f} / {n99:.3f} ms "
          f"{n50 / py50:>6.2f}  <= 0.6 ms; ratio <= 1.5")  # fmt: skip
    print(f"{'baseline: posix_spawn `node -e` hello, p50 / p99':<52} "
          f"{spawn50:>9.3f} / {spawn99:.3f} ms")  # fmt: skip
    print(f"{'nodejs20.x cold start, p50 / p99':<52} {cold50:>9.3f} / {cold99:.3f} ms "
          f"{cold50 / spawn50:>6.2f}  ratio <= 1.2")  # fmt: skip


if __name__ == "__main__":
    main()
