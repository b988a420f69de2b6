"""Which isolation this host allows, decided once at start.

strict   root: every namespace, cgroup limits, a fresh read-only root, an unprivileged uid,
         seccomp. The default wherever Lamina runs as root.
userns   no root, but user namespaces work: the same namespaces and root, seccomp; no cgroups,
         so memory is capped with RLIMIT_AS and processes are not counted.
rlimits  neither: functions run as the server's user with rlimits only. Unsafe for untrusted
         code; the server says so loudly, and `isolation = strict` refuses to start.
"""

from __future__ import annotations

import enum
import os
import subprocess
import sys


class Isolation(enum.Enum):
    STRICT = "strict"
    USERNS = "userns"
    RLIMITS = "rlimits"


def detect(cgroups_available: bool, interpreters: tuple[str, ...] = ()) -> Isolation:
    if os.geteuid() == 0 and cgroups_available:
        return Isolation.STRICT
    if user_namespaces_work(interpreters):
        return Isolation.USERNS
    return Isolation.RLIMITS


PROBE_FAILED = 3  # the probe's own code for "unshare was refused"


def user_namespaces_work(interpreters: tuple[str, ...] = ()) -> bool:
    """Probe in a child process (the server itself must never unshare). A probe that cannot
    run at all (the interpreter is unreadable to this user, say) says nothing: try the next."""
    probe = (
        "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
        f"sys.exit(0 if libc.unshare(0x10000000 | 0x00020000) == 0 else {PROBE_FAILED})"
    )
    for interpreter in (sys.executable, *interpreters):
        try:
            result = subprocess.run(
                [interpreter, "-S", "-c", probe], timeout=10, check=False, capture_output=True
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode in (0, PROBE_FAILED):
            return result.returncode == 0
    return False
