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


def detect(cgroups_available: bool) -> Isolation:
    if os.geteuid() == 0 and cgroups_available:
        return Isolation.STRICT
    if user_namespaces_work():
        return Isolation.USERNS
    return Isolation.RLIMITS


def user_namespaces_work() -> bool:
    """Probe in a child process (the server itself must never unshare)."""
    probe = (
        "import ctypes, os, sys; libc = ctypes.CDLL(None, use_errno=True); "
        "sys.exit(0 if libc.unshare(0x10000000 | 0x00020000) == 0 else 1)"  # NEWUSER | NEWNS
    )
    try:
        result = subprocess.run([sys.executable, "-S", "-c", probe], timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0
