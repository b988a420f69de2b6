"""The Linux sandbox primitives do what they claim, observed from inside and outside.

Anything that changes a process (namespaces, mounts, seccomp, ids, limits) runs in a forked
child that reports back as JSON over a pipe; the test process itself is never changed.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from lamina_inside import linux

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0, reason="needs Linux and root"
)

SRC = Path(__file__).resolve().parents[3] / "src"
LIBC = ctypes.CDLL(None, use_errno=True)
MACHINE = os.uname().machine
CHILD_DEADLINE = 10.0


class IdMaps(NamedTuple):
    uid_map: str
    gid_map: str
    deny_setgroups: bool = True


class Child:
    """The forked child's side of the handshake with the test process."""

    def __init__(self, to_parent: int, from_parent: int) -> None:
        self.to_parent = to_parent
        self.from_parent = from_parent

    def enter_userns(self) -> None:
        """Unshare a user namespace and wait until the parent has written its id maps."""
        linux.unshare(linux.CLONE_NEWUSER)
        os.write(self.to_parent, b'{"userns": true}\n')
        if os.read(self.from_parent, 1) != b"k":
            raise RuntimeError("parent did not write the id maps")


def run_in_child(work: Callable[[Child], Any], id_maps: IdMaps | None = None) -> Any:
    """Run `work` in a forked child; return its JSON-able result or fail with its traceback."""
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child_main(work, up_r, up_w, down_r, down_w)
    os.close(up_w)
    os.close(down_r)
    try:
        message = _serve_child(pid, up_r, down_w, id_maps)
    finally:
        os.close(up_r)
        os.close(down_w)
    _, status = os.waitpid(pid, 0)
    if "error" in message:
        pytest.fail("child failed:\n" + message["error"])
    assert os.waitstatus_to_exitcode(status) == 0
    return message["result"]


def _child_main(
    work: Callable[[Child], Any], up_r: int, up_w: int, down_r: int, down_w: int
) -> None:
    code = 1
    try:
        os.close(up_r)
        os.close(down_w)
        try:
            message = {"result": work(Child(up_w, down_r))}
            code = 0
        except BaseException:
            message = {"error": traceback.format_exc()}
        os.write(up_w, json.dumps(message).encode() + b"\n")
    finally:
        os._exit(code)


def _serve_child(pid: int, up_r: int, down_w: int, id_maps: IdMaps | None) -> dict[str, Any]:
    deadline = time.monotonic() + CHILD_DEADLINE
    buffer = b""
    while True:
        while b"\n" not in buffer:
            ready, _, _ = select.select([up_r], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(up_r, 65536) if ready else b""
            if not chunk:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                pytest.fail("child timed out or died without reporting")
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        if "userns" not in message:
            return message
        assert id_maps is not None, "child entered a user namespace without id maps"
        linux.write_id_maps(pid, id_maps.uid_map, id_maps.gid_map, id_maps.deny_setgroups)
        os.write(down_w, b"k")


def errno_of(call: Callable[[], object]) -> int | None:
    """The errno `call` fails with, or None if it succeeds."""
    try:
        call()
    except OSError as exc:
        return exc.errno
    return None


def write_file(path: str | Path, data: str = "x") -> None:
    with open(path, "w") as handle:
        handle.write(data)


def read_file(path: str | Path) -> str:
    with open(path) as handle:
        return handle.read()


def proc_status(field: str) -> str:
    for line in read_file("/proc/self/status").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    raise KeyError(field)


def private_mount_namespace() -> None:
    linux.unshare(linux.CLONE_NEWNS)
    # Without this, mounts below could propagate back to the host's shared mounts.
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)


# --- mounts -------------------------------------------------------------------------------


def without_mount_setattr() -> None:
    """Take the path of kernels before 5.12 (no mount_setattr): a remount per mount."""
    linux._set_readonly_tree = lambda path, recursive: False


@pytest.mark.parametrize("mount_setattr", [True, False], ids=["mount_setattr", "remounts"])
def test_tmpfs_and_readonly_bind_stay_inside_the_mount_namespace(
    tmp_path: Path, mount_setattr: bool
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def work(_: Child) -> dict[str, Any]:
        if not mount_setattr:
            without_mount_setattr()
        private_mount_namespace()
        linux.mount("tmpfs", str(scratch), "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1m")
        (scratch / "src" / "sub").mkdir(parents=True)
        (scratch / "ro").mkdir()
        write_file(scratch / "src" / "file", "hello")
        linux.mount("tmpfs", str(scratch / "src" / "sub"), "tmpfs", 0, "size=1m")
        linux.bind_mount(str(scratch / "src"), str(scratch / "ro"), readonly=True)
        return {
            "read": read_file(scratch / "ro" / "file"),
            "write_top": errno_of(lambda: write_file(scratch / "ro" / "new")),
            "write_submount": errno_of(lambda: write_file(scratch / "ro" / "sub" / "new")),
            "write_source": errno_of(lambda: write_file(scratch / "src" / "new")),
            "flags": os.statvfs(scratch / "ro").f_flag,
        }

    seen = run_in_child(work)
    assert seen["read"] == "hello"
    assert seen["write_top"] == errno.EROFS
    assert seen["write_submount"] == errno.EROFS  # recursive binds are read-only throughout
    assert seen["write_source"] is None
    assert seen["flags"] & os.ST_RDONLY
    assert seen["flags"] & os.ST_NOSUID
    assert seen["flags"] & os.ST_NODEV
    assert not os.path.ismount(scratch)
    assert list(scratch.iterdir()) == []


def test_bind_mount_without_readonly_stays_writable(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()

    def work(_: Child) -> str:
        private_mount_namespace()
        linux.bind_mount(str(tmp_path / "src"), str(tmp_path / "dst"), readonly=False)
        write_file(tmp_path / "dst" / "through", "bound")
        return read_file(tmp_path / "src" / "through")

    assert run_in_child(work) == "bound"
    assert not os.path.ismount(tmp_path / "dst")


@pytest.mark.parametrize("mount_setattr", [True, False], ids=["mount_setattr", "remounts"])
def test_readonly_bind_keeps_locked_flags_in_a_user_namespace(
    tmp_path: Path, mount_setattr: bool
) -> None:
    def work(child: Child) -> dict[str, Any]:
        if not mount_setattr:
            without_mount_setattr()
        private_mount_namespace()
        locked = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
        linux.mount("tmpfs", str(tmp_path), "tmpfs", locked, "size=1m")
        for name in ("src", "dst", "naive"):
            (tmp_path / name).mkdir()
        # A mount namespace owned by a less privileged user namespace locks inherited flags.
        child.enter_userns()
        linux.unshare(linux.CLONE_NEWNS)
        linux.mount(str(tmp_path / "src"), str(tmp_path / "naive"), None, linux.MS_BIND)
        naive_flags = linux.MS_REMOUNT | linux.MS_BIND | linux.MS_RDONLY
        naive = errno_of(lambda: linux.mount(None, str(tmp_path / "naive"), None, naive_flags))
        linux.bind_mount(str(tmp_path / "src"), str(tmp_path / "dst"), readonly=True)
        return {
            "naive": naive,
            "write": errno_of(lambda: write_file(tmp_path / "dst" / "new")),
            "flags": os.statvfs(tmp_path / "dst").f_flag,
        }

    seen = run_in_child(work, IdMaps("0 0 65536", "0 0 65536"))
    assert seen["naive"] == errno.EPERM
    assert seen["write"] == errno.EROFS
    assert seen["flags"] & os.ST_NOEXEC
    assert seen["flags"] & os.ST_RDONLY


def test_pivot_root_into_a_tmpfs_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()

    def work(_: Child) -> dict[str, Any]:
        private_mount_namespace()
        linux.mount("tmpfs", str(root), "tmpfs", 0, "size=1m,mode=0755")
        for name in ("usr", "old"):
            (root / name).mkdir()
        write_file(root / "marker", "new root")
        linux.bind_mount("/usr", str(root / "usr"), readonly=True)
        linux.pivot_root(str(root), str(root / "old"))
        os.chdir("/")
        old_had_proc = os.path.isdir("/old/proc")
        linux.umount2("/old", linux.MNT_DETACH)
        return {
            "listing": sorted(os.listdir("/")),
            "marker": read_file("/marker"),
            "usr_bin": os.path.isdir("/usr/bin"),
            "usr_write": errno_of(lambda: write_file("/usr/lamina-test")),
            "old_had_proc": old_had_proc,
            "old_after_detach": os.listdir("/old"),
        }

    seen = run_in_child(work)
    assert seen["listing"] == ["marker", "old", "usr"]
    assert seen["marker"] == "new root"
    assert seen["usr_bin"]
    assert seen["usr_write"] == errno.EROFS
    assert seen["old_had_proc"]
    assert seen["old_after_detach"] == []
    assert not os.path.ismount(root)


def test_pivot_root_refuses_a_directory_that_is_not_a_mount_point(tmp_path: Path) -> None:
    plain = tmp_path / "plain"

    def work(_: Child) -> list[Any]:
        private_mount_namespace()
        # On a mount of its own, so the kernel gets past "same mount as /" (EBUSY).
        linux.mount("tmpfs", str(tmp_path), "tmpfs", 0, "size=1m")
        (plain / "old").mkdir(parents=True)
        try:
            linux.pivot_root(str(plain), str(plain / "old"))
        except OSError as exc:
            return [exc.errno, str(exc)]
        return [None, ""]

    code, message = run_in_child(work)
    assert code == errno.EINVAL
    assert f"pivot_root({str(plain)!r}, {str(plain / 'old')!r})" in message


def test_failures_name_the_call_and_its_arguments(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")

    def work(_: Child) -> list[str]:
        messages = []
        private_mount_namespace()
        calls: list[Callable[[], None]] = [
            lambda: linux.mount("tmpfs", missing, "tmpfs", linux.MS_NOSUID, "size=1m"),
            lambda: linux.umount2(str(tmp_path), linux.MNT_DETACH),
        ]
        for call in calls:
            try:
                call()
            except OSError as exc:
                messages.append(f"{exc.errno} {exc.strerror}")
        return messages

    mount_failure, umount_failure = run_in_child(work)
    assert mount_failure.startswith(
        f"{errno.ENOENT} mount('tmpfs', {missing!r}, 'tmpfs', 0x2, 'size=1m'): "
    )
    assert umount_failure.startswith(f"{errno.EINVAL} umount2({str(tmp_path)!r}, 0x2): ")


# --- network and hostname -----------------------------------------------------------------


def test_loopback_up_makes_localhost_reachable_in_a_new_network_namespace() -> None:
    def work(_: Child) -> dict[str, Any]:
        linux.unshare(linux.CLONE_NEWNET)
        before = errno_of(lambda: socket.create_connection(("127.0.0.1", 9), timeout=2).close())
        linux.loopback_up()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            port = listener.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
                peer, _ = listener.accept()
                with peer:
                    client.sendall(b"ping")
                    echoed = peer.recv(4)
        return {"before": before, "echoed": echoed.decode()}

    seen = run_in_child(work)
    assert seen["before"] == errno.ENETUNREACH
    assert seen["echoed"] == "ping"


def test_sethostname_in_a_new_uts_namespace() -> None:
    host = socket.gethostname()

    def work(_: Child) -> str:
        linux.unshare(linux.CLONE_NEWUTS)
        linux.sethostname("lamina-sandbox")
        return socket.gethostname()

    assert run_in_child(work) == "lamina-sandbox"
    assert socket.gethostname() == host


# --- user namespaces and identity ---------------------------------------------------------


def test_id_maps_written_by_the_parent_make_the_child_root_in_its_namespace() -> None:
    def work(child: Child) -> dict[str, Any]:
        linux.drop_privileges(1000, 1000)  # an unprivileged user creates the namespace
        child.enter_userns()
        return {
            "ids": [os.getuid(), os.geteuid(), os.getgid()],
            "uid_map": read_file("/proc/self/uid_map").split(),
            "setgroups": read_file("/proc/self/setgroups").strip(),
        }

    seen = run_in_child(work, IdMaps("0 1000 1\n", "0 1000 1\n"))
    assert seen["ids"] == [0, 0, 0]
    assert seen["uid_map"] == ["0", "1000", "1"]
    assert seen["setgroups"] == "deny"


def test_write_id_maps_validates_and_names_the_file() -> None:
    with pytest.raises(ValueError, match="not a pid"):
        linux.write_id_maps("../1", "0 0 1", "0 0 1", deny_setgroups=False)
    with pytest.raises(FileNotFoundError, match=r"/proc/999999999/gid_map"):
        linux.write_id_maps(999_999_999, "0 0 1", "0 0 1", deny_setgroups=False)


@pytest.fixture
def root_owned_dir() -> Iterator[Path]:
    """A 0o755 root-owned directory that any user can reach (tmp_path's parents are 0o700)."""
    path = Path(tempfile.mkdtemp(prefix="lamina-linux-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


def test_drop_privileges_is_complete_and_irreversible(root_owned_dir: Path) -> None:
    def work(_: Child) -> dict[str, Any]:
        linux.drop_privileges(65534, 65534)
        return {
            "uids": os.getresuid(),
            "gids": os.getresgid(),
            "groups": os.getgroups(),
            "write": errno_of(lambda: write_file(root_owned_dir / "new")),
            "setuid_root": errno_of(lambda: os.setuid(0)),
            "again": errno_of(lambda: linux.drop_privileges(0, 0)),
        }

    seen = run_in_child(work)
    assert seen["uids"] == [65534] * 3
    assert seen["gids"] == [65534] * 3
    assert seen["groups"] == []
    assert seen["write"] == errno.EACCES
    assert seen["setuid_root"] == errno.EPERM
    assert seen["again"] == errno.EPERM  # setgroups refused outside a userns is not ignored


def test_drop_privileges_in_a_user_namespace_with_setgroups_denied() -> None:
    def work(child: Child) -> list[Any]:
        child.enter_userns()
        linux.drop_privileges(1000, 1000)
        return [os.getresuid(), os.getresgid()]

    uids, gids = run_in_child(work, IdMaps("0 100000 65536", "0 100000 65536"))
    assert uids == [1000] * 3
    assert gids == [1000] * 3


# --- process attributes and limits --------------------------------------------------------


def test_set_rlimits_nofile_is_enforced() -> None:
    def work(_: Child) -> dict[str, Any]:
        linux.set_rlimits({"NOFILE": (16, 16)})
        opened: list[int] = []
        failure = None
        while failure is None and len(opened) < 32:
            try:
                opened.append(os.open("/dev/null", os.O_RDONLY))
            except OSError as exc:
                failure = exc.errno
        highest = max(opened)
        for fd in opened:
            os.close(fd)
        linux.drop_privileges(65534, 65534)
        raise_hard = None
        try:
            linux.set_rlimits({"RLIMIT_NOFILE": (32, 32)})
        except OSError as exc:
            raise_hard = [exc.errno, exc.strerror]
        return {"failure": failure, "highest": highest, "raise_hard": raise_hard}

    seen = run_in_child(work)
    assert seen["failure"] == errno.EMFILE
    assert seen["highest"] <= 15  # fds inherited from pytest count too
    assert seen["raise_hard"] == [
        errno.EPERM,
        "setrlimit(RLIMIT_NOFILE, (32, 32)): Operation not permitted",
    ]


def test_set_rlimits_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="BOGUS"):
        linux.set_rlimits({"BOGUS": (1, 1)})


def test_prctl_wrappers_take_effect() -> None:
    def work(_: Child) -> dict[str, Any]:
        value = ctypes.c_int(-1)
        linux.set_pdeathsig(signal.SIGKILL)
        LIBC.prctl(2, ctypes.byref(value))  # PR_GET_PDEATHSIG
        pdeathsig = value.value
        linux.set_child_subreaper()
        LIBC.prctl(37, ctypes.byref(value))  # PR_GET_CHILD_SUBREAPER
        subreaper = value.value
        linux.set_dumpable(False)
        dumpable = LIBC.prctl(3)  # PR_GET_DUMPABLE
        linux.set_no_new_privs()
        return {
            "pdeathsig": pdeathsig,
            "subreaper": subreaper,
            "dumpable": dumpable,
            "no_new_privs": proc_status("NoNewPrivs"),
        }

    seen = run_in_child(work)
    assert seen == {"pdeathsig": 9, "subreaper": 1, "dumpable": 0, "no_new_privs": "1"}


# --- seccomp ------------------------------------------------------------------------------


def clone_errno(flags: int) -> int | None:
    """clone(2) via syscall(); a child that should not exist exits at once."""
    pid = LIBC.syscall(
        ctypes.c_long(linux.SYSCALLS[MACHINE]["clone"]), ctypes.c_ulong(flags), 0, 0, 0, 0
    )
    if pid == 0:
        os._exit(0)
    if pid < 0:
        return ctypes.get_errno()
    os.waitpid(pid, 0)
    return None


def test_seccomp_denylist_blocks_the_listed_syscalls_only(tmp_path: Path) -> None:
    def work(_: Child) -> dict[str, Any]:
        linux.install_seccomp_denylist(linux.DEFAULT_DENYLIST)
        ptrace = LIBC.ptrace(0, 0, None, None)  # PTRACE_TRACEME
        seen: dict[str, Any] = {
            "ptrace": [ptrace, ctypes.get_errno()],
            "mount": errno_of(lambda: linux.mount("tmpfs", str(tmp_path), "tmpfs", 0)),
            "unshare": errno_of(lambda: linux.unshare(linux.CLONE_NEWNS)),
            "clone_newuser": clone_errno(linux.CLONE_NEWUSER | signal.SIGCHLD),
            "pid": os.getpid(),
            "status": [proc_status("NoNewPrivs"), proc_status("Seccomp")],
        }
        write_file(tmp_path / "io", "still works")
        seen["io"] = read_file(tmp_path / "io")
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        seen["fork"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        # glibc creates threads with clone3, denied as ENOSYS so that it falls back to clone.
        ran: list[bool] = []
        thread = threading.Thread(target=lambda: ran.append(True))
        thread.start()
        thread.join()
        seen["thread"] = ran
        return seen

    seen = run_in_child(work)
    assert seen["ptrace"] == [-1, errno.EPERM]
    assert seen["mount"] == errno.EPERM
    assert seen["unshare"] == errno.EPERM
    assert seen["clone_newuser"] == errno.EPERM
    assert seen["pid"] > 1
    assert seen["status"] == ["1", "2"]
    assert seen["io"] == "still works"
    assert seen["fork"] == 7
    assert seen["thread"] == [True]
    assert not os.path.ismount(tmp_path)


def test_seccomp_with_a_custom_errno_and_namespace_clone_allowed() -> None:
    def work(_: Child) -> dict[str, Any]:
        linux.install_seccomp_denylist(["ptrace", "iopl"], errno.ENOSYS, deny_namespace_clone=False)
        ptrace = LIBC.ptrace(0, 0, None, None)
        return {
            "ptrace": [ptrace, ctypes.get_errno()],
            "unshare": errno_of(lambda: linux.unshare(linux.CLONE_NEWUTS)),
            "clone_newuts": clone_errno(linux.CLONE_NEWUTS | signal.SIGCHLD),
        }

    seen = run_in_child(work)
    assert seen == {"ptrace": [-1, errno.ENOSYS], "unshare": None, "clone_newuts": None}


def test_seccomp_rejects_bad_arguments_before_installing_anything() -> None:
    with pytest.raises(ValueError, match="no_such_call"):
        linux.install_seccomp_denylist(["ptrace", "no_such_call"])
    with pytest.raises(ValueError, match="errno"):
        linux.install_seccomp_denylist(["ptrace"], 0)
    assert proc_status("Seccomp") == "0"


def test_syscall_tables_cover_the_default_denylist() -> None:
    assert set(linux.DEFAULT_DENYLIST) <= set(linux.SYSCALLS["x86_64"])
    assert set(linux.DEFAULT_DENYLIST) - set(linux.SYSCALLS["aarch64"]) == {"iopl", "ioperm"}
    assert len(set(linux.DEFAULT_DENYLIST)) == len(linux.DEFAULT_DENYLIST)
    # x86-only names are skipped on aarch64 rather than refused
    assert linux.seccomp_program(
        ["iopl", "ptrace"], errno.EPERM, arch="aarch64", deny_namespace_clone=False
    ) == linux.seccomp_program(["ptrace"], errno.EPERM, arch="aarch64", deny_namespace_clone=False)
    namespaces = (
        linux.CLONE_NEWNS | linux.CLONE_NEWCGROUP | linux.CLONE_NEWUTS | linux.CLONE_NEWIPC
        | linux.CLONE_NEWUSER | linux.CLONE_NEWPID | linux.CLONE_NEWNET
    )  # fmt: skip
    assert namespaces == linux._CLONE_NAMESPACES


# --- other interpreters -------------------------------------------------------------------

SANDBOX_SCRIPT = r"""
import errno, json, os, socket, sys
sys.path.insert(0, sys.argv[1])
before = set(sys.modules)
from lamina_inside import linux
heavy = {"threading", "logging", "subprocess", "asyncio", "socket", "resource"}
imported = sorted((set(sys.modules) - before) & heavy)

def errno_of(call):
    try:
        call()
    except OSError as exc:
        return exc.errno

# this whole process is disposable: no fork needed
linux.unshare(linux.CLONE_NEWNS | linux.CLONE_NEWUTS | linux.CLONE_NEWNET | linux.CLONE_NEWIPC)
linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
scratch = sys.argv[2]
linux.mount("tmpfs", scratch, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1m")
os.mkdir(scratch + "/ro")
linux.bind_mount("/usr", scratch + "/ro", readonly=True)
linux.sethostname("lamina-" + sys.version.split()[0])
linux.loopback_up()
linux.install_seccomp_denylist(linux.DEFAULT_DENYLIST)
with socket.create_server(("127.0.0.1", 0)) as listener:
    socket.create_connection(listener.getsockname(), timeout=2).close()
pid = os.fork()
if pid == 0:
    os._exit(3)
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines())
print(json.dumps({
    "imported": imported,
    "hostname": socket.gethostname(),
    "ro_write": errno_of(lambda: open(scratch + "/ro/x", "w")),
    "mount": errno_of(lambda: linux.mount("tmpfs", scratch, "tmpfs", 0)),
    "unshare": errno_of(lambda: linux.unshare(linux.CLONE_NEWNS)),
    "fork": os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]),
    "seccomp": [status["NoNewPrivs"], status["Seccomp"]],
}))
"""


@pytest.mark.parametrize("version", ["3.11.7", "3.12.1", "3.13.0"])
def test_sandbox_primitives_under_each_supported_python(version: str, tmp_path: Path) -> None:
    python = Path(f"/root/.pyenv/versions/{version}/bin/python")
    if not python.exists():
        pytest.skip(f"Python {version} is not installed")
    done = subprocess.run(
        [str(python), "-I", "-c", SANDBOX_SCRIPT, str(SRC), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=CHILD_DEADLINE,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {
        "imported": [],
        "hostname": f"lamina-{version}",
        "ro_write": errno.EROFS,
        "mount": errno.EPERM,
        "unshare": errno.EPERM,
        "fork": 3,
        "seccomp": ["1", "2"],
    }
    assert not os.path.ismount(tmp_path)
