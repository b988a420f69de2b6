"""Probes that run inside a Lamina sandbox and report, as JSON, what they managed to do.

Deployed as `app.py` (handler `app.handler`); the event names the probe and its arguments:
{"probe": "<name>", ...}. Every probe catches its own failures and reports them as data
({"ok": false, "errno": 13, "error": "..."}): the tests decide what is acceptable.
Standard library only: this file runs under the function's interpreter, not the test's.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import socket
import time
from collections.abc import Callable
from functools import partial
from typing import Any

LIBC = ctypes.CDLL(None, use_errno=True)

# Syscalls without a libc wrapper, by architecture (see lamina_inside/linux.py).
SYSCALL_NUMBERS = {
    "x86_64": {"init_module": 175, "finit_module": 313},
    "aarch64": {"init_module": 105, "finit_module": 273},
}
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLOCK_REALTIME = 0
PTRACE_TRACEME = 0


def handler(event: dict[str, Any], context: Any) -> Any:
    return PROBES[event["probe"]](event)


# --- helpers ------------------------------------------------------------------------------


def attempt(action: Callable[[], Any]) -> dict[str, Any]:
    """Run `action`; {"ok": True, "value": ...} or {"ok": False, "errno": n, "error": text}."""
    try:
        return {"ok": True, "value": action()}
    except OSError as error:
        return {"ok": False, "errno": error.errno, "error": f"{type(error).__name__}: {error}"}
    except Exception as error:  # e.g. ValueError from resource.setrlimit on EPERM
        return {"ok": False, "errno": None, "error": f"{type(error).__name__}: {error}"}


def libc_call(result: int) -> dict[str, Any]:
    """A raw libc return value and errno, as C sees them."""
    err = ctypes.get_errno() if result == -1 else 0
    return {"result": int(result), "errno": err, "error": os.strerror(err) if err else ""}


def read_path(path: str) -> Any:
    if os.path.isdir(path):
        return sorted(os.listdir(path))[:100]
    with open(path, "rb") as handle:
        return handle.read(256).decode("latin-1")


def status_fields() -> dict[str, str]:
    fields = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def mount_points() -> list[dict[str, str]]:
    mounts = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            parts = line.split()
            mounts.append({"root": parts[3], "point": parts[4], "options": parts[5]})
    return mounts


def own_pids() -> list[int]:
    return sorted(int(name) for name in os.listdir("/proc") if name.isdigit())


def descriptors() -> dict[str, str]:
    found = {}
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the fd listdir itself used, now closed
            found[name] = os.readlink(f"/proc/self/fd/{name}")
    return found


# --- probes -------------------------------------------------------------------------------


def probe_read(event: dict[str, Any]) -> dict[str, Any]:
    """Try to read (or list) each of event["paths"]."""
    return {path: attempt(partial(read_path, path)) for path in event["paths"]}


def probe_identity(event: dict[str, Any]) -> dict[str, Any]:
    fields = status_fields()
    keys = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
    return {
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "status": {key: fields.get(key, "") for key in (*keys, "NoNewPrivs", "Seccomp")},
        "uid_map": attempt(lambda: open("/proc/self/uid_map").read().split()),
        "cwd": os.getcwd(),
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "address_space": list(resource.getrlimit(resource.RLIMIT_AS)),
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
    }


def probe_filesystem(event: dict[str, Any]) -> dict[str, Any]:
    return {
        "root": sorted(os.listdir("/")),
        "var": sorted(os.listdir("/var")),
        "mounts": mount_points(),
        "task": sorted(os.listdir("/var/task")),
    }


def probe_processes(event: dict[str, Any]) -> dict[str, Any]:
    kills = {str(pid): attempt(partial(os.kill, pid, 0)) for pid in event["host_pids"]}
    return {
        "pids": own_pids(),
        "me": os.getpid(),
        "parent": os.getppid(),
        "init_cmdline": attempt(lambda: open("/proc/1/cmdline").read().split("\0")[:2]),
        "kill": kills,
        "environ": {
            str(pid): attempt(partial(read_path, f"/proc/{pid}/environ"))
            for pid in event["host_pids"]
        },
    }


def probe_syscalls(event: dict[str, Any]) -> dict[str, Any]:
    """Privileged operations, straight through libc: each should fail with EPERM."""
    machine = os.uname().machine
    numbers = SYSCALL_NUMBERS.get("aarch64" if machine == "arm64" else machine, {})

    class Timespec(ctypes.Structure):
        _fields_ = (("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long))

    class Timeval(ctypes.Structure):
        _fields_ = (("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long))

    now = int(time.time())
    results: dict[str, Any] = {
        "ptrace": libc_call(
            LIBC.ptrace(ctypes.c_long(PTRACE_TRACEME), ctypes.c_long(0), None, None)
        ),
        "mount": libc_call(LIBC.mount(b"none", b"/tmp", b"tmpfs", ctypes.c_ulong(0), None)),
        "clock_settime": libc_call(
            LIBC.clock_settime(ctypes.c_int(CLOCK_REALTIME), ctypes.byref(Timespec(now, 0)))
        ),
        "settimeofday": libc_call(LIBC.settimeofday(ctypes.byref(Timeval(now, 0)), None)),
        "unshare_user": libc_call(LIBC.unshare(ctypes.c_int(CLONE_NEWUSER))),
        "unshare_mount": libc_call(LIBC.unshare(ctypes.c_int(CLONE_NEWNS))),
        "unshare_net_pid": libc_call(LIBC.unshare(ctypes.c_int(CLONE_NEWNET | CLONE_NEWPID))),
        "chroot": libc_call(LIBC.chroot(b"/tmp")),
    }
    if numbers:
        image = ctypes.create_string_buffer(b"\0" * 64)
        results["init_module"] = libc_call(
            LIBC.syscall(
                ctypes.c_long(numbers["init_module"]),
                image,
                ctypes.c_ulong(64),
                ctypes.c_char_p(b""),
            )
        )
        with open("/dev/null", "rb") as module:
            results["finit_module"] = libc_call(
                LIBC.syscall(
                    ctypes.c_long(numbers["finit_module"]),
                    ctypes.c_int(module.fileno()),
                    ctypes.c_char_p(b""),
                    ctypes.c_int(0),
                )
            )
    results["time_after"] = time.time()
    return results


def probe_write(event: dict[str, Any]) -> dict[str, Any]:
    """Try to create a file in each of event["dirs"] (removing it again if that worked)."""

    def create(directory: str) -> str:
        path = os.path.join(directory, f"lamina-probe-{os.getpid()}-{time.time_ns()}")
        with open(path, "w") as handle:
            handle.write("written from inside the sandbox\n")
        os.unlink(path)
        return path

    return {directory: attempt(partial(create, directory)) for directory in event["dirs"]}


def probe_forkbomb(event: dict[str, Any]) -> dict[str, Any]:
    """Fork until refused (or `limit` attempts); hold the children `hold_s`, then end them."""
    started = time.monotonic()
    release_r, release_w = os.pipe()
    forked, stopped, attempts = 0, None, 0
    for attempts in range(1, int(event.get("limit", 2000)) + 1):  # noqa: B007
        try:
            pid = os.fork()
        except OSError as error:
            stopped = errno.errorcode.get(error.errno or 0, str(error.errno))
            break
        if pid == 0:  # child: wait for the parent to let go, then leave without cleanup
            try:
                os.close(release_w)
                os.read(release_r, 1)
            finally:
                os._exit(0)
        forked += 1
    saturated = time.monotonic()
    time.sleep(float(event.get("hold_s", 0)))
    os.close(release_w)  # every child's read returns EOF
    reaped = 0
    while True:
        try:
            os.waitpid(-1, 0)
            reaped += 1
        except ChildProcessError:
            break
        except InterruptedError:
            continue
    os.close(release_r)
    return {
        "forked": forked,
        "attempts": attempts,
        "stopped_by": stopped,
        "reaped": reaped,
        "seconds_to_saturate": saturated - started,
        "pid_namespace": os.readlink("/proc/self/ns/pid"),
        "pids_after": len(own_pids()),
    }


def probe_memory(event: dict[str, Any]) -> dict[str, Any]:
    """Allocate and touch event["mb"] megabytes in 16 MB chunks."""
    # Each chunk is written, so resident: not a lazily mapped calloc.
    chunks = [b"\x01" * (16 << 20) for _ in range(int(event["mb"]) // 16)]
    return {"allocated_mb": 16 * len(chunks)}


def probe_disk(event: dict[str, Any]) -> dict[str, Any]:
    """Fill /tmp with up to event["mb"] megabytes; then try writing elsewhere."""
    path = "/tmp/lamina-fill"
    chunk = b"\x02" * (1 << 20)
    written, failure = 0, None
    try:
        with open(path, "wb") as handle:
            for _ in range(int(event["mb"])):
                handle.write(chunk)
                handle.flush()
                written += 1
            os.fsync(handle.fileno())
    except OSError as error:
        failure = {"errno": error.errno, "error": str(error)}
    statvfs = os.statvfs("/tmp")
    elsewhere = probe_write({"dirs": event.get("elsewhere", [])})
    with contextlib.suppress(OSError):
        os.unlink(path)
    return {
        "written_mb": written,
        "failure": failure,
        "tmp_size_mb": statvfs.f_blocks * statvfs.f_frsize // (1 << 20),
        "elsewhere": elsewhere,
    }


def probe_descriptors(event: dict[str, Any]) -> dict[str, Any]:
    """Open /dev/null until refused (or event["count"] times); also try raising the limit."""
    opened: list[int] = []
    failure = None
    try:
        while len(opened) < int(event["count"]):
            opened.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as error:
        failure = {"errno": error.errno, "error": str(error)}
    highest = max(opened, default=-1)
    for fd in opened:
        os.close(fd)
    raise_limit = attempt(lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096)))
    return {
        "opened": len(opened),
        "highest_fd": highest,
        "failure": failure,
        "limit": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "raise_limit": raise_limit,
    }


def probe_inherited(event: dict[str, Any]) -> dict[str, Any]:
    """The runtime's open descriptors, as /proc/self/fd names them."""
    return {"descriptors": descriptors()}


def probe_write_inherited(event: dict[str, Any]) -> dict[str, Any]:
    """Write event["marker"] into every inherited pipe or file other than stdio."""
    written = {}
    for name, target in descriptors().items():
        fd = int(name)
        if fd <= 2 or target.startswith(("socket:", "anon_inode:")) or target == "/dev/null":
            continue
        written[name] = {
            "target": target,
            **attempt(partial(os.write, fd, event["marker"].encode())),
        }
    return written


def probe_connect(event: dict[str, Any]) -> dict[str, Any]:
    """Connect to the host's loopback listener and to its abstract unix socket."""

    def tcp() -> str:
        with socket.create_connection(("127.0.0.1", int(event["port"])), timeout=3) as sock:
            sock.settimeout(3)
            return sock.recv(64).decode("latin-1")

    def abstract() -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect("\0" + event["abstract"])
            return sock.recv(64).decode("latin-1")

    return {"tcp": attempt(tcp), "abstract": attempt(abstract)}


def probe_listen(event: dict[str, Any]) -> dict[str, Any]:
    """Listen on 0.0.0.0:event["port"] for event["hold_s"] seconds, accepting whatever comes."""
    accepted = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", int(event["port"])))
        server.listen(16)
        server.settimeout(0.2)
        listening_from = time.time()
        deadline = time.monotonic() + float(event["hold_s"])
        while time.monotonic() < deadline:
            try:
                peer, address = server.accept()
            except TimeoutError:
                continue
            with peer:
                accepted.append(list(address))
                with contextlib.suppress(OSError):
                    peer.sendall(b"hello from inside the sandbox")
        listening_until = time.time()
    return {
        "listening_from": listening_from,
        "listening_until": listening_until,
        "accepted": accepted,
    }


def probe_tmp_put(event: dict[str, Any]) -> dict[str, Any]:
    with open(os.path.join("/tmp", event["name"]), "w") as handle:
        handle.write(event["content"])
    return {"tmp": sorted(os.listdir("/tmp"))}


def probe_tmp_look(event: dict[str, Any]) -> dict[str, Any]:
    path = os.path.join("/tmp", event["name"])
    return {"tmp": sorted(os.listdir("/tmp")), "read": attempt(lambda: read_path(path))}


PROBES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "read": probe_read,
    "identity": probe_identity,
    "filesystem": probe_filesystem,
    "processes": probe_processes,
    "syscalls": probe_syscalls,
    "write": probe_write,
    "forkbomb": probe_forkbomb,
    "memory": probe_memory,
    "disk": probe_disk,
    "descriptors": probe_descriptors,
    "inherited": probe_inherited,
    "write_inherited": probe_write_inherited,
    "connect": probe_connect,
    "listen": probe_listen,
    "tmp_put": probe_tmp_put,
    "tmp_look": probe_tmp_look,
}
