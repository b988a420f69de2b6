"""Thin wrappers over the Linux primitives a sandbox is built from.

Each wrapper raises OSError(errno, "<call>(<arguments>): <reason>") on failure, so a failed
sandbox setup names the exact step that broke. Raw syscalls (pivot_root, seccomp filters) know
x86_64 and aarch64; elsewhere they raise OSError(ENOSYS) rather than guess numbers.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import signal
import struct
from collections.abc import Callable, Iterable, Mapping
from typing import NoReturn

# namespaces (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags (linux/mount.h)
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000
# mount_setattr(2) (Linux 5.12): attributes for a whole mount tree in one call.
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
MNT_DETACH = 0x2

# prctl(2) options (linux/prctl.h)
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_NO_NEW_PRIVS = 39

_libc = ctypes.CDLL(None, use_errno=True)
# Looked up now, in the zygote: ctypes resolves a function with dlsym on its first use, which
# every environment would otherwise repeat on its cold start.
for _name in ("mount", "prctl", "sethostname", "setrlimit", "syscall", "umount2", "unshare"):
    getattr(_libc, _name)
del _name


def _fail(call: str) -> NoReturn:
    err = ctypes.get_errno()
    raise OSError(err, f"{call}: {os.strerror(err)}")


def _path(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def _ulong(value: int) -> ctypes.c_ulong:
    # prctl and syscall are variadic: pass full-width words, since prctl rejects garbage in
    # the upper half of "unused" arguments with EINVAL.
    return ctypes.c_ulong(value)


def _prctl(option: int, arg: int, call: str) -> None:
    zero = _ulong(0)
    if _libc.prctl(ctypes.c_int(option), _ulong(arg), zero, zero, zero) < 0:
        _fail(call)


# --- architecture -------------------------------------------------------------------------


def _arch() -> str:
    machine = os.uname().machine
    # A 32-bit interpreter on a 64-bit kernel sees the kernel's machine name but makes 32-bit
    # syscalls with other numbers and another audit arch: treat it as unsupported.
    if ctypes.sizeof(ctypes.c_void_p) != 8:
        return f"{machine}/32-bit"
    return "aarch64" if machine == "arm64" else machine


_SAME_ON_ALL_ARCHES = {
    # Syscalls added since Linux 5.1 share one number on every architecture.
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "clone3": 435,
    "mount_setattr": 442,
}

SYSCALLS: dict[str, dict[str, int]] = {
    "x86_64": {
        "ptrace": 101, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
        "kexec_file_load": 320, "bpf": 321, "perf_event_open": 298, "add_key": 248,
        "request_key": 249, "keyctl": 250, "unshare": 272, "setns": 308, "clock_settime": 227,
        "clock_adjtime": 305, "settimeofday": 164, "adjtimex": 159, "reboot": 169,
        "swapon": 167, "swapoff": 168, "acct": 163, "process_vm_readv": 310,
        "process_vm_writev": 311, "userfaultfd": 323, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "quotactl": 179, "syslog": 103, "iopl": 172, "ioperm": 173,
        "lookup_dcookie": 212, "personality": 135, "clone": 56,
        **_SAME_ON_ALL_ARCHES,
    },
    "aarch64": {  # the asm-generic table; aarch64 has no iopl/ioperm
        "ptrace": 117, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
        "kexec_file_load": 294, "bpf": 280, "perf_event_open": 241, "add_key": 217,
        "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268, "clock_settime": 112,
        "clock_adjtime": 266, "settimeofday": 170, "adjtimex": 171, "reboot": 142,
        "swapon": 224, "swapoff": 225, "acct": 89, "process_vm_readv": 270,
        "process_vm_writev": 271, "userfaultfd": 282, "open_by_handle_at": 265,
        "name_to_handle_at": 264, "quotactl": 60, "syslog": 116, "lookup_dcookie": 18,
        "personality": 92, "clone": 220,
        **_SAME_ON_ALL_ARCHES,
    },
}  # fmt: skip

_AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


def _syscalls(call: str) -> tuple[str, dict[str, int]]:
    arch = _arch()
    table = SYSCALLS.get(arch)
    if table is None:
        raise OSError(errno.ENOSYS, f"{call}: unsupported architecture {arch}")
    return arch, table


# --- namespaces and mounts ----------------------------------------------------------------


# A handle whose calls keep the GIL, as os.fork does around fork(2): Python's fork hooks run
# before and after the clone with the interpreter in one consistent state.
_libc_holding_gil = ctypes.PyDLL(None, use_errno=True)
_libc_holding_gil.syscall.restype = ctypes.c_long


def fork_into(flags: int) -> int:
    """os.fork(), but the child starts in the namespaces `flags` asks for (clone(2) with
    CLONE_NEW* flags): one fork where unshare(2) needs two, since a new pid namespace takes
    only the caller's children. Returns 0 in the child and its pid in the parent.

    The child's C library keeps the parent's cached thread id (fork(2) would refresh it); the
    C library asks the kernel instead where that matters (raise, since glibc 2.34), and a
    child that forks again with os.fork gives its own children correct ones."""
    call = f"clone({flags:#x})"
    _, table = _syscalls(call)
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = int(
        _libc_holding_gil.syscall(
            ctypes.c_long(table["clone"]),
            ctypes.c_ulong(flags | signal.SIGCHLD),
            None,  # no new stack: the child continues on a copy of ours, as after fork
            None,
            None,
            None,
        )
    )
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    error = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(error, f"{call}: {os.strerror(error)}")
    return pid


def unshare(flags: int) -> None:
    if _libc.unshare(ctypes.c_int(flags)) < 0:
        _fail(f"unshare({flags:#x})")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    result = _libc.mount(
        ctypes.c_char_p(_path(source)),
        ctypes.c_char_p(os.fsencode(target)),
        ctypes.c_char_p(_path(fstype)),
        _ulong(flags),
        ctypes.c_char_p(_path(data)),
    )
    if result < 0:
        _fail(f"mount({source!r}, {target!r}, {fstype!r}, {flags:#x}, {data!r})")


def umount2(target: str, flags: int) -> None:
    if _libc.umount2(ctypes.c_char_p(os.fsencode(target)), ctypes.c_int(flags)) < 0:
        _fail(f"umount2({target!r}, {flags:#x})")


def pivot_root(new_root: str, put_old: str) -> None:
    call = f"pivot_root({new_root!r}, {put_old!r})"
    _, table = _syscalls(call)
    result = _libc.syscall(
        ctypes.c_long(table["pivot_root"]),
        ctypes.c_char_p(os.fsencode(new_root)),
        ctypes.c_char_p(os.fsencode(put_old)),
    )
    if result < 0:
        _fail(call)


# statvfs reports a mount's per-mount flags with ST_* bits; not all equal their MS_* twins.
_LOCKABLE_FLAGS = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, MS_NOEXEC),
    (os.ST_NOATIME, MS_NOATIME),
    (os.ST_NODIRATIME, MS_NODIRATIME),
    (os.ST_RELATIME, MS_RELATIME),
)


def _mount_flags(path: str) -> int:
    """The MS_* flags a remount of the mount at `path` must keep."""
    # Inside a user namespace the kernel locks the flags of mounts inherited from a more
    # privileged namespace; a remount that would clear one fails with EPERM.
    st_flags = os.statvfs(path).f_flag
    flags = 0
    for st, ms in _LOCKABLE_FLAGS:
        if st_flags & st:
            flags |= ms
    return flags


def _remount_readonly(path: str) -> None:
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | _mount_flags(path)
    mount(None, path, None, flags)


def _unescape_mountinfo(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as \ooo octal escapes, so
    # every backslash in a field starts one.
    head, *rest = field.split("\\")
    return head + "".join(chr(int(part[:3], 8)) + part[3:] for part in rest)


def _submounts(target: str) -> list[str]:
    """Mount points strictly below `target` in this mount namespace."""
    prefix = target.rstrip("/") + "/"
    with open("/proc/self/mountinfo", "rb") as info:
        points = [_unescape_mountinfo(os.fsdecode(line.split()[4])) for line in info]
    return [point for point in points if point.startswith(prefix)]


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _set_readonly_tree(path: str, recursive: bool) -> bool:
    """Read-only, nosuid and nodev on the mount at `path` (and every mount below it if
    `recursive`) in one mount_setattr call; False where the kernel has no mount_setattr."""
    call = f"mount_setattr({path!r})"
    _, table = _syscalls(call)
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, 0, 0)
    result = _libc.syscall(
        ctypes.c_long(table["mount_setattr"]),
        ctypes.c_int(AT_FDCWD),
        ctypes.c_char_p(os.fsencode(path)),
        ctypes.c_uint(AT_RECURSIVE if recursive else 0),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    if result == 0:
        return True
    if ctypes.get_errno() == errno.ENOSYS:
        return False
    _fail(call)


def bind_mount(source: str, target: str, *, readonly: bool, recursive: bool = True) -> None:
    """Bind `source` onto `target`; if `readonly`, also nosuid, nodev and read-only throughout."""
    mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if not readonly:
        return
    # A bind mount starts with the source's flags; read-only takes a second step: one
    # mount_setattr for the whole tree, or, on kernels before 5.12, a remount per mount (a
    # remount applies to one mount only; mounts below a recursive bind would stay writable).
    top = os.path.realpath(target)
    if _set_readonly_tree(top, recursive):
        return
    _remount_readonly(top)
    if recursive:
        for point in _submounts(top):
            _remount_readonly(point)


# --- identity -----------------------------------------------------------------------------


def sethostname(name: str) -> None:
    raw = name.encode()
    if _libc.sethostname(ctypes.c_char_p(raw), ctypes.c_size_t(len(raw))) < 0:
        _fail(f"sethostname({name!r})")


def _write_proc(path: str, text: str) -> None:
    data = text.encode()
    call = f"write({path!r}, {text!r})"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            # The kernel accepts an id map only as one single write().
            written = os.write(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        raise OSError(exc.errno, f"{call}: {exc.strerror}") from None
    if written != len(data):
        raise OSError(errno.EIO, f"{call}: short write of {written} bytes")


def write_id_maps(pid: int | str, uid_map: str, gid_map: str, deny_setgroups: bool) -> None:
    """Map ids for the user namespace of `pid` (a pid or "self")."""
    if not (isinstance(pid, int) or pid == "self" or pid.isdigit()):
        raise ValueError(f"not a pid: {pid!r}")
    base = f"/proc/{pid}"
    # setgroups must be denied before an unprivileged writer may write gid_map.
    if deny_setgroups:
        _write_proc(f"{base}/setgroups", "deny")
    _write_proc(f"{base}/gid_map", gid_map)
    _write_proc(f"{base}/uid_map", uid_map)


def _setgroups_denied() -> bool:
    try:
        with open("/proc/self/setgroups") as status:
            return status.read().strip() == "deny"
    except FileNotFoundError:  # kernels before 3.19: setgroups cannot be denied
        return False


def _id_call(call: str, function: Callable[[int, int, int], None], *ids: int) -> None:
    try:
        function(*ids)
    except OSError as exc:
        raise OSError(exc.errno, f"{call}{ids}: {exc.strerror}") from None


def drop_privileges(uid: int, gid: int) -> None:
    """Become uid/gid (real, effective and saved) with no supplementary groups, irrevocably."""
    try:
        os.setgroups([])
    except PermissionError:
        # In a user namespace with setgroups denied the group list is frozen at creation and
        # this cannot succeed; anywhere else EPERM means the caller lacks the privilege.
        if not _setgroups_denied():
            raise OSError(errno.EPERM, "setgroups([]): Operation not permitted") from None
    # Group first: after setresuid there is no privilege left to change it.
    _id_call("setresgid", os.setresgid, gid, gid, gid)
    _id_call("setresuid", os.setresuid, uid, uid, uid)
    uids, gids = os.getresuid(), os.getresgid()
    if uids != (uid, uid, uid) or gids != (gid, gid, gid):
        raise OSError(errno.EPERM, f"drop_privileges({uid}, {gid}): still uids {uids}, gids {gids}")


# --- process attributes -------------------------------------------------------------------


def set_no_new_privs() -> None:
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, "prctl(PR_SET_NO_NEW_PRIVS, 1)")


def _no_new_privs() -> bool:
    zero = _ulong(0)
    result = int(_libc.prctl(ctypes.c_int(_PR_GET_NO_NEW_PRIVS), zero, zero, zero, zero))
    if result < 0:
        _fail("prctl(PR_GET_NO_NEW_PRIVS)")
    return result == 1


def set_pdeathsig(sig: int) -> None:
    """Receive `sig` when the parent thread dies.

    The parent may already be gone: callers compare os.getppid() with the expected parent
    after this call.
    """
    _prctl(_PR_SET_PDEATHSIG, sig, f"prctl(PR_SET_PDEATHSIG, {sig})")


def set_child_subreaper() -> None:
    _prctl(_PR_SET_CHILD_SUBREAPER, 1, "prctl(PR_SET_CHILD_SUBREAPER, 1)")


def set_dumpable(flag: bool) -> None:
    _prctl(_PR_SET_DUMPABLE, int(flag), f"prctl(PR_SET_DUMPABLE, {int(flag)})")


class _Rlimit(ctypes.Structure):
    _fields_ = (("rlim_cur", ctypes.c_ulong), ("rlim_max", ctypes.c_ulong))


_RLIM_INFINITY = ctypes.c_ulong(-1).value


def set_rlimits(limits: Mapping[str, tuple[int, int]]) -> None:
    """Set (soft, hard) limits by name ("NOFILE" or "RLIMIT_NOFILE"); negative is infinity."""
    import resource  # only for the RLIMIT_* numbers; kept out of the import-time cost

    for name, (soft, hard) in limits.items():
        number = getattr(resource, "RLIMIT_" + name.upper().removeprefix("RLIMIT_"), None)
        if not isinstance(number, int):
            raise ValueError(f"unknown resource limit {name!r}")
        # libc directly rather than resource.setrlimit, which turns EPERM into ValueError.
        value = _Rlimit(_RLIM_INFINITY if soft < 0 else soft, _RLIM_INFINITY if hard < 0 else hard)
        if _libc.setrlimit(ctypes.c_int(number), ctypes.byref(value)) < 0:
            _fail(f"setrlimit({name}, ({soft}, {hard}))")


# --- network ------------------------------------------------------------------------------

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ_FLAGS = struct.Struct("16sH22x")  # struct ifreq: name, then a 24-byte union


def loopback_up() -> None:
    """Bring `lo` up in this network namespace (a new one starts with it down)."""
    interface_up("lo")


def interface_up(interface: str) -> None:
    """Set IFF_UP on an interface of this network namespace."""
    import socket  # the zygote imports it for its channel anyway; it is slow to import here

    name = interface.encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            reply = fcntl.ioctl(sock.fileno(), _SIOCGIFFLAGS, _IFREQ_FLAGS.pack(name, 0))
            flags = _IFREQ_FLAGS.unpack(reply)[1] | _IFF_UP
            fcntl.ioctl(sock.fileno(), _SIOCSIFFLAGS, _IFREQ_FLAGS.pack(name, flags))
        except OSError as exc:
            raise OSError(
                exc.errno, f"ioctl(SIOC[GS]IFFLAGS, {interface!r}): {exc.strerror}"
            ) from None


# --- seccomp ------------------------------------------------------------------------------

DEFAULT_DENYLIST: tuple[str, ...] = (
    # debugging and reading other processes' memory
    "ptrace", "process_vm_readv", "process_vm_writev", "perf_event_open", "personality",
    # mounts and roots, old and new APIs
    "mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fsconfig",
    "move_mount", "open_tree", "mount_setattr",
    # namespaces
    "unshare", "setns",
    # kernel modules, kexec, eBPF, reboot, swap, accounting
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "bpf",
    "reboot", "swapon", "swapoff", "acct", "quotactl", "syslog", "lookup_dcookie",
    # the kernel keyring is not namespaced
    "add_key", "request_key", "keyctl",
    # the clock is shared with the host
    "clock_settime", "clock_adjtime", "settimeofday", "adjtimex",
    # userfaultfd widens kernel race windows; file handles bypass the mount namespace
    "userfaultfd", "open_by_handle_at", "name_to_handle_at",
    # raw port I/O (x86 only)
    "iopl", "ioperm",
)  # fmt: skip

_KNOWN_SYSCALLS = frozenset(name for table in SYSCALLS.values() for name in table)

# classic BPF (linux/filter.h, linux/bpf_common.h) and seccomp (linux/seccomp.h)
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_SECCOMP_RET_KILL_PROCESS = 0x80000000
_SECCOMP_RET_ERRNO = 0x00050000
_SECCOMP_RET_ALLOW = 0x7FFF0000
_SECCOMP_MODE_FILTER = 2
_DATA_NR, _DATA_ARCH, _DATA_ARG0 = 0, 4, 16  # struct seccomp_data offsets (arg0: low half)
_X32_SYSCALL_BIT = 0x40000000
# All CLONE_NEW* flags clone(2) accepts. Not CLONE_NEWTIME (0x80): only clone3 and unshare
# take it, clone's low byte being the exit signal.
_CLONE_NAMESPACES = 0x7E020000
_INSN = struct.Struct("=HBBI")  # struct sock_filter


def _stmt(code: int, k: int) -> bytes:
    return _INSN.pack(code, 0, 0, k)


def _jump(code: int, k: int, jt: int, jf: int) -> bytes:
    return _INSN.pack(code, jt, jf, k)


def _namespace_clone_guard(table: dict[str, int], deny: int) -> list[bytes]:
    """clone3 -> ENOSYS; clone with a namespace flag -> denied. Expects A = nr; ends in ALLOW."""
    # clone3 takes its flags in memory that BPF cannot read. ENOSYS makes glibc (2.34+ threads,
    # posix_spawn) fall back to clone, whose flags are an argument it can.
    return [
        _jump(_BPF_JEQ_K, table["clone3"], 0, 1),
        _stmt(_BPF_RET_K, _SECCOMP_RET_ERRNO | errno.ENOSYS),
        _jump(_BPF_JEQ_K, table["clone"], 0, 3),
        _stmt(_BPF_LD_W_ABS, _DATA_ARG0),
        _jump(_BPF_JSET_K, _CLONE_NAMESPACES, 0, 1),
        _stmt(_BPF_RET_K, deny),
        _stmt(_BPF_RET_K, _SECCOMP_RET_ALLOW),
    ]


def seccomp_program(
    names: Iterable[str], errno_value: int, *, arch: str, deny_namespace_clone: bool
) -> bytes:
    """The classic BPF filter that install_seccomp_denylist loads, as sock_filter bytes."""
    table = SYSCALLS[arch]
    deny = _SECCOMP_RET_ERRNO | errno_value
    program = [
        # Another arch (i386 via int 0x80, say) numbers syscalls differently: kill outright.
        _stmt(_BPF_LD_W_ABS, _DATA_ARCH),
        _jump(_BPF_JEQ_K, _AUDIT_ARCH[arch], 1, 0),
        _stmt(_BPF_RET_K, _SECCOMP_RET_KILL_PROCESS),
        _stmt(_BPF_LD_W_ABS, _DATA_NR),
    ]
    if arch == "x86_64":
        # x32 syscalls share the x86_64 audit arch and reach the same handlers with the x32
        # bit set, so they would slip past every number below.
        program += [_jump(_BPF_JGE_K, _X32_SYSCALL_BIT, 0, 1), _stmt(_BPF_RET_K, deny)]
    for number in sorted({table[name] for name in names if name in table}):
        program += [_jump(_BPF_JEQ_K, number, 0, 1), _stmt(_BPF_RET_K, deny)]
    if deny_namespace_clone:
        program += _namespace_clone_guard(table, deny)
    else:
        program.append(_stmt(_BPF_RET_K, _SECCOMP_RET_ALLOW))
    return b"".join(program)


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


_programs: dict[tuple[tuple[str, ...], int, str, bool], bytes] = {}


def _cached_program(names: tuple[str, ...], errno_value: int, arch: str, deny_clone: bool) -> bytes:
    """Build each filter once per process: a zygote builds it, its forks only install it."""
    key = (names, errno_value, arch, deny_clone)
    code = _programs.get(key)
    if code is None:
        code = _programs[key] = seccomp_program(
            names, errno_value, arch=arch, deny_namespace_clone=deny_clone
        )
    return code


def prepare_seccomp_denylist(names: Iterable[str], errno_value: int = errno.EPERM) -> None:
    """Build the filter `install_seccomp_denylist` will load, ahead of time."""
    arch, _ = _syscalls("seccomp")
    _cached_program(tuple(names), errno_value, arch, True)


def install_seccomp_denylist(
    names: Iterable[str], errno_value: int = errno.EPERM, *, deny_namespace_clone: bool = True
) -> None:
    """Make the listed syscalls fail with `errno_value` for this process and its descendants.

    Names unknown on this architecture (iopl on aarch64) are skipped; names unknown everywhere
    raise ValueError. With `deny_namespace_clone`, clone(2) with CLONE_NEW* flags fails too
    (else it would bypass a denied unshare) and clone3(2) reports ENOSYS. Sets no_new_privs.
    Applies to the calling thread only: call it while single-threaded.
    """
    names = tuple(names)
    unknown = sorted(set(names) - _KNOWN_SYSCALLS)
    if unknown:
        raise ValueError(f"unknown syscalls: {', '.join(unknown)}")
    if not 0 < errno_value < 4096:
        # RET_ERRNO with 0 would make a denied syscall report success without running.
        raise ValueError(f"errno value out of range: {errno_value}")
    arch, _ = _syscalls("seccomp")
    code = _cached_program(names, errno_value, arch, deny_namespace_clone)
    buffer = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // _INSN.size, ctypes.addressof(buffer))
    # Without no_new_privs only CAP_SYS_ADMIN may install a filter.
    if not _no_new_privs():
        set_no_new_privs()
    zero = _ulong(0)
    args = (_ulong(_SECCOMP_MODE_FILTER), ctypes.byref(prog), zero, zero)
    if _libc.prctl(ctypes.c_int(_PR_SET_SECCOMP), *args) < 0:
        _fail(f"prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, <{len(code) // _INSN.size} insns>)")


# --- network configuration inside an environment's namespace ----------------------------------

_SIOCSIFADDR = 0x8916
_SIOCSIFNETMASK = 0x891C
_SIOCADDRT = 0x890B
_RTF_UP = 0x0001
_RTF_GATEWAY = 0x0002


def _sockaddr_in(address: str) -> bytes:
    import socket

    return struct.pack("=HH4s8x", socket.AF_INET, 0, socket.inet_aton(address))


# struct rtentry (linux/route.h) on LP64 (x86_64, aarch64): pad1, dst, gateway, genmask,
# flags, pad2, pad3, pad4, metric, dev, mtu, window, irtt.
_RTENTRY = struct.Struct("=Q16s16s16sHh4xQQh6xQQQH6x")


def configure_ipv4(interface: str, address: str, prefix: int, gateway: str) -> None:
    """Give `interface` an address, bring it up, and route everything through `gateway`."""
    import socket

    netmask = socket.inet_ntoa(struct.pack("!I", (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF))
    name = interface.encode()[:15]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for request, value in ((_SIOCSIFADDR, address), (_SIOCSIFNETMASK, netmask)):
            ifreq = struct.pack("16s16s", name, _sockaddr_in(value))
            try:
                fcntl.ioctl(sock, request, ifreq)
            except OSError as error:
                message = f"ioctl({request:#x}, {interface}, {value}): {error}"
                raise OSError(error.errno, message) from None
        interface_up(interface)
        any_address = _sockaddr_in("0.0.0.0")
        route = _RTENTRY.pack(
            0, any_address, _sockaddr_in(gateway), any_address, _RTF_UP | _RTF_GATEWAY,
            0, 0, 0, 0, 0, 0, 0, 0,
        )  # fmt: skip
        try:
            fcntl.ioctl(sock, _SIOCADDRT, route)
        except OSError as error:
            message = f"ioctl(SIOCADDRT, default via {gateway}): {error}"
            raise OSError(error.errno, message) from None
