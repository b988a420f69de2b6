"""The zygote: a lean, single-threaded fork server, one per runtime interpreter.

It pre-imports the sandbox code and the runtime, then forks an execution environment for each
spawn request from the server. It is the child subreaper of everything it forks, so it reaps
each environment's init and reports how it ended.

Control socket (SOCK_SEQPACKET, one JSON message per packet):
  server -> zygote  {"op": "spawn", "spec": {...}}  + SCM_RIGHTS [channel fd, log fd]
                    {"op": "exit"}
  zygote -> server  {"event": "hello", "prefix": ..., "version": [major, minor]}
                    {"event": "spawned", "env": id, "pid": pid}   pid of the environment's init
                    {"event": "failed", "env": id, "error": text}
                    {"event": "exited", "env": id, "status": code or -signal}
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any

from lamina_inside import channel, linux, sandbox

MAX_PACKET = 1 << 20


class _Children:
    """What the zygote knows about the processes it forked."""

    def __init__(self) -> None:
        self.inits: dict[int, str] = {}  # environment init pid -> environment id
        self.reports: dict[int, tuple[str, int]] = {}  # report pipe -> (environment, pid of A)
        self.forkers: set[int] = set()  # pids of A processes not yet reaped
        self.early: dict[int, int] = {}  # inits that ended before their A reported them


def main(control_fd: int) -> None:
    control = socket.socket(fileno=control_fd)
    _preload()
    linux.set_child_subreaper()
    linux.set_pdeathsig(signal.SIGKILL)  # never outlive the server
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children = _Children()
    _send(control, event="hello", prefix=sys.base_prefix, version=list(sys.version_info[:2]))
    while True:
        ready, _, _ = select.select([control.fileno(), wake_r, *children.reports], [], [])
        for fd in ready:
            if fd in children.reports:
                _collect(control, children, fd)
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(control, children)
        if control.fileno() in ready and not _serve(control, children):
            return


def _preload() -> None:
    # Everything an environment needs before its runtime rewrites sys.path must be imported
    # now: after pivot_root the interpreter's library lives at another path.
    import gc
    import resource  # noqa: F401  (linux.set_rlimits)

    from lamina_inside import python_runtime, runtime_api

    del runtime_api  # the Runtime API bridge of custom runtimes (selectors, no threads)
    python_runtime.preload()
    sandbox.prepare_seccomp()
    # Our own directory must not shadow user modules once the runtime starts.
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p) != here]
    # Forks share the zygote's pages until they write them; a collector pass walking every
    # object would write them all. Frozen objects are never walked.
    gc.freeze()


def _serve(control: socket.socket, children: _Children) -> bool:
    fds = array.array("i")
    data, ancdata, _, _ = control.recvmsg(MAX_PACKET, socket.CMSG_SPACE(16 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data:
        return False  # the server went away
    request = json.loads(data)
    if request["op"] == "exit":
        return False
    try:
        _spawn(control, children, request["spec"], list(fds))
    finally:
        for fd in fds:
            os.close(fd)
    return True


def _spawn(
    control: socket.socket, children: _Children, spec: dict[str, Any], fds: list[int]
) -> None:
    """Fork A and move on: A's report arrives on a pipe the main loop watches, so spawns of
    several environments overlap instead of queueing behind each other."""
    env_id = spec["env_id"]
    sandbox.move_python_paths(spec.get("python_prefix"))  # once, for every environment
    report_r, report_w = os.pipe()
    try:
        pid_a = os.fork()
    except OSError as error:
        os.close(report_r)
        os.close(report_w)
        _send(control, event="failed", env=env_id, error=f"fork: {error}")
        return
    if pid_a == 0:
        os.close(report_r)
        control.close()
        _become_a(spec, fds, report_w)
    os.close(report_w)
    children.reports[report_r] = (env_id, pid_a)
    children.forkers.add(pid_a)


def _collect(control: socket.socket, children: _Children, report_r: int) -> None:
    """A has reported (and exits): announce the environment, or its failure."""
    env_id, _ = children.reports.pop(report_r)
    raw = _read_all(report_r)
    os.close(report_r)
    if not raw.startswith(b"pid "):
        _send(control, event="failed", env=env_id, error=raw.decode(errors="replace") or "unknown")
        return
    pid_b = int(raw[4:])
    _send(control, event="spawned", env=env_id, pid=pid_b)
    if pid_b in children.early:
        _send(control, event="exited", env=env_id, status=children.early.pop(pid_b))
    else:
        children.inits[pid_b] = env_id


def _become_a(spec: dict[str, Any], fds: list[int], report_w: int) -> None:
    try:
        # Undo the zygote's signal plumbing: its wake-up fd number would be reused.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _keep_only([*fds, report_w])
        os.setsid()
        sandbox.enter(spec)
        pid_b = os.fork()
        if pid_b == 0:
            os.close(report_w)
            _become_b(spec, fds)
        os.write(report_w, f"pid {pid_b}".encode())
        os._exit(0)
    except BaseException:
        os.write(report_w, traceback.format_exc().encode()[-4000:])
        os._exit(1)


def _become_b(stem: dict[str, Any], fds: list[int]) -> None:
    """The namespace's init: build the generic root, fork the runtime-to-be, then reap."""
    channel_fd, log_fd = fds
    try:
        sandbox.prepare(stem)
        pid_c = os.fork()
    except BaseException as error:
        _report_setup_failure(channel_fd, error)
        os._exit(70)
    if pid_c == 0:
        _become_c(stem, channel_fd, log_fd)
    for fd in fds:
        os.close(fd)
    try:
        sandbox.seal(stem.get("init_seal", {}))  # reaping needs no privileges
    except BaseException:
        os.kill(pid_c, 9)
        os._exit(70)
    _reap_until(pid_c)


def _become_c(stem: dict[str, Any], channel_fd: int, log_fd: int) -> None:
    """Get ready, wait for the specialization, mount the function, seal, become the runtime."""
    try:
        sandbox.ready_runtime(stem, log_fd)
        sandbox.seal_early(stem)
        spec = _wait_for_specialization(channel_fd)
    except (OSError, ValueError, channel.ChannelClosed):
        os._exit(0)  # the server let this stem go unused
    try:
        sandbox.mount_function(stem, spec)
        sandbox.seal(spec)
        sandbox.start_runtime(spec, channel_fd)
    except BaseException as error:
        _report_setup_failure(channel_fd, error)
    os._exit(70)


def _wait_for_specialization(fd: int) -> dict[str, Any]:
    while True:
        size, kind = channel.parse_prefix(_read_exact(fd, channel.PREFIX_SIZE))
        header, _ = channel.decode_body(_read_exact(fd, size))
        if kind == channel.SPECIALIZE:
            return header
        if kind != channel.PREPARE:
            raise ValueError(f"expected a specialization, got frame kind {kind}")
        sandbox.configure_network(header)


def _read_exact(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, size)
        if not chunk:
            raise channel.ChannelClosed()
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _keep_only(keep: list[int]) -> None:
    """An environment inherits nothing from the zygote: not its wake-up pipe, not the
    server's output. Standard streams become /dev/null until the runtime wires its log."""
    null = os.open("/dev/null", os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    wanted = set(keep) | {0, 1, 2}
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in wanted:
            with contextlib.suppress(OSError):
                os.close(fd)


def _report_setup_failure(channel_fd: int, error: BaseException) -> None:
    doc = {"errorType": "Sandbox.Failure", "errorMessage": f"{type(error).__name__}: {error}"}
    with contextlib.suppress(OSError):  # the server may be gone already
        os.write(channel_fd, channel.encode(channel.INIT_ERROR, doc))


def _reap_until(pid_c: int) -> None:
    """As init of the namespace: reap orphans; leave with the runtime's status."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == pid_c:
            if os.WIFSIGNALED(status):
                os._exit(128 + os.WTERMSIG(status))
            os._exit(os.WEXITSTATUS(status))


def _reap(control: socket.socket, children: _Children) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if pid in children.forkers:
            children.forkers.discard(pid)
            continue
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        env_id = children.inits.pop(pid, None)
        if env_id is not None:
            _send(control, event="exited", env=env_id, status=code)
        else:
            children.early[pid] = code  # its A has not reported it yet


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _send(control: socket.socket, **message: Any) -> None:
    control.send(json.dumps(message).encode())


if __name__ == "__main__":
    main(int(sys.argv[1]))
