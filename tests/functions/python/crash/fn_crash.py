"""Dies in the way the event asks; otherwise counts warm invocations.

Optional event keys, applied before the mode: `marker` renames the process (its comm, at most
15 bytes) so the host can find it; `orphan` leaves a detached grandchild behind (made before the
rename); `delay` waits that many seconds.
"""

import ctypes
import os
import time
from typing import Any

COUNT = 0
PR_SET_NAME = 15


def _rename(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME) failed")


def _orphan() -> None:
    """A setsid grandchild that would outlive the invocation if nothing reaped it."""
    if os.fork() == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                time.sleep(600)
        finally:
            os._exit(0)
    os.wait()


def handler(event: Any, context: Any) -> Any:
    global COUNT
    COUNT += 1
    mode = event.get("mode", "ok")
    print(f"mode {mode}")
    if event.get("orphan"):
        _orphan()
    if event.get("marker"):  # after the orphan exists: the host then finds the whole group
        _rename(event["marker"])
    time.sleep(event.get("delay", 0))
    if mode == "sleep":
        time.sleep(event["seconds"])
    elif mode == "exit":
        os._exit(3)
    elif mode == "kill":
        os.kill(os.getpid(), 9)
    elif mode == "segv":
        ctypes.string_at(0)
    elif mode == "oom":
        hog = [b"x" * (10 * 1024 * 1024) for _ in range(30)]  # 300 MB, every page written
        return len(hog)
    return {"count": COUNT, "mode": mode}
