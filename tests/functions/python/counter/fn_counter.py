"""Warm-state probe: a module-level counter, an id kept in /tmp, and busy markers in /tmp."""

import os
import time
import uuid
from typing import Any

VERSION = "v1"
COUNT = 0
if not os.path.exists("/tmp/env_id"):
    with open("/tmp/env_id", "w") as f:
        f.write(uuid.uuid4().hex)
with open("/tmp/env_id") as f:
    ENV_ID = f.read()


def handler(event: Any, context: Any) -> Any:
    global COUNT
    COUNT += 1
    start = time.time()
    overlap = os.path.exists("/tmp/busy")
    with open("/tmp/busy", "w") as f:
        f.write(context.aws_request_id)
    with open("/tmp/intervals", "a") as f:
        f.write(f"start {start}\n")
    time.sleep(event.get("sleep", 0))
    end = time.time()
    with open("/tmp/intervals", "a") as f:
        f.write(f"end {end}\n")
    os.remove("/tmp/busy")
    with open("/tmp/intervals") as f:
        intervals = f.read().split("\n")[:-1]
    return {
        "version": VERSION,
        "count": COUNT,
        "env_id": ENV_ID,
        "stream": context.log_stream_name,
        "mark": os.environ.get("MARK"),
        "overlap": overlap,
        "start": start,
        "end": end,
        "intervals": intervals,
    }
