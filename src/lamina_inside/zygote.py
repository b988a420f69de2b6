"""The zygote: a lean, single-threaded fork server, one per runtime interpreter.

It pre-imports the sandbox code and the runtime, then clones an execution environment's init
into new namespaces for each spawn request from the server, reaps each init and reports how it
ended.

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
from typing import Any, NoReturn

from lamina_inside import channel, linux, sandbox

MAX_PACKET = 1 << 20


def main(control_fd: int) -> None:
    control = socket.socket(fileno=control_fd)
    _preload()
    linux.set_child_subreaper()  # without a pid namespace (rlimits) orphans come to us
    linux.set_pdeathsig(signal.SIGKILL)  # never outlive the server
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    inits: dict[int, str] = {}  # environment init pid -> environment id
    _send(control, event="hello", prefix=sys.base_prefix, version=list(sys.version_info[:2]))
    while True:
        ready, _, _ = select.select([control.fileno(), wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
            _reap(control, inits)
        if control.fileno() in ready and not _serve(control, inits):
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


def _serve(control: socket.socket, inits: dict[int, str]) -> bool:
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
        _spawn(control, inits, request["spec"], list(fds))
    finally:
        for fd in fds:
            os.close(fd)
    return True


def _spawn(
    control: socket.socket, inits: dict[int, str], spec: dict[str, Any], fds: list[int]
) -> None:
    """Clone B into its namespaces and move on: B builds the rest itself, so spawns of several
    environments overlap instead of queueing behind each other."""
    env_id = spec["env_id"]
    sandbox.move_python_paths(spec.get("python_prefix"))  # once, for every environment
    ids = os.getuid(), os.getgid()
    try:
        pid = linux.fork_into(sandbox.clone_flags(spec))
    except OSError as error:
        _send(control, event="failed", env=env_id, error=str(error))
        return
    if pid == 0:
        _become_b(control, spec, fds, ids)
    inits[pid] = env_id
    _send(control, event="spawned", env=env_id, pid=pid)


def _become_b(
    control: socket.socket, stem: dict[str, Any], fds: list[int], ids: tuple[int, int]
) -> NoReturn:
    """The namespace's init: enter, build the generic root, fork the runtime-to-be, reap."""
    channel_fd, log_fd = fds
    try:
        # Undo the zygote's signal plumbing: its wake-up fd number would be reused.
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        control.close()
        _keep_only(fds)
        sandbox.enter(stem, *ids)
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


def _become_c(stem: dict[str, Any], channel_fd: int, log_fd: int) -> NoReturn:
    """Get ready, wait for the specialization, mount the function, seal, become the runtime."""
    try:
        sandbox.ready_runtime(stem, log_fd)
        sandbox.seal_early(stem)
        os.write(channel_fd, channel.encode(channel.STANDBY, {}))
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
        channel.linger(channel_fd)


def _reap_until(pid_c: int) -> NoReturn:
    """As init of the namespace: reap orphans; leave with the runtime's status."""
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == pid_c:
            if os.WIFSIGNALED(status):
                os._exit(128 + os.WTERMSIG(status))
            os._exit(os.WEXITSTATUS(status))


def _reap(control: socket.socket, inits: dict[int, str]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        env_id = inits.pop(pid, None)
        if env_id is not None:
            _send(control, event="exited", env=env_id, status=code)


def _send(control: socket.socket, **message: Any) -> None:
    control.send(json.dumps(message).encode())


if __name__ == "__main__":
    main(int(sys.argv[1]))
