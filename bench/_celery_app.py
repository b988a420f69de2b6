"""The Celery baseline's app: one trivial task on the local Redis broker. Each run counts its
finished tasks in a Redis key so the producer sees when all are done."""

from __future__ import annotations

import os

import redis
from celery import Celery

BROKER = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/15")
COUNTER = "lamina-bench:done"

app = Celery("lamina_bench", broker=BROKER)
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False)
_redis = redis.Redis.from_url(BROKER)


@app.task(name="trivial")  # type: ignore[untyped-decorator]
def trivial(event: dict[str, str]) -> dict[str, str]:
    _redis.incr(COUNTER)
    return {"hello": "world"}
