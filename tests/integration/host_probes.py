"""What the host sees of environments (not a test module): processes by name or command line,
their start times, and their cgroup v1 memory groups. For the leak and teardown tests."""

from __future__ import annotations

import glob
import os
import re


def read_text(path: str) -> str | None:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return None


def start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: tells a process apart from a later one with its pid."""
    stat = read_text(f"/proc/{pid}/stat")
    return stat.rsplit(")", 1)[1].split()[19] if stat else None


def all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def named(marker: str) -> list[int]:
    """Processes any of whose threads carries `marker` as its name."""
    return [
        pid
        for pid in all_pids()
        if any(
            (read_text(comm) or "").strip() == marker
            for comm in glob.glob(f"/proc/{pid}/task/*/comm")
        )
    ]


def with_command(command: str) -> list[int]:
    """Processes whose command line (arguments joined by spaces) is exactly `command`."""
    return [
        pid
        for pid in all_pids()
        if (read_text(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip() == command
    ]


def memory_group(pid: int) -> str | None:
    """The cgroup v1 memory group of `pid`, e.g. /lamina-<hex>/env-3 (None: no such process)."""
    lines = read_text(f"/proc/{pid}/cgroup") or ""
    match = re.search(r"^\d+:(?:[^:]*,)?memory(?:,[^:]*)?:(.*)$", lines, re.MULTILINE)
    return match.group(1) if match else None


def group_members(group: str) -> dict[int, str]:
    """The processes of a memory cgroup (and its children): pid -> start time."""
    members: dict[int, str] = {}
    for procs in glob.glob(f"/sys/fs/cgroup/memory{group}/**/cgroup.procs", recursive=True):
        for pid in (read_text(procs) or "").split():
            started = start_time(int(pid))
            if started is not None:
                members[int(pid)] = started
    return members
