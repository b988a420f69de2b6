"""Apply a sandbox spec to the current process, in a fixed order (nsjail's containProc idea).

Environments are made in two steps so the slow, generic part happens ahead of demand:

  stem (zygote spawn):  the zygote clones B into new namespaces; B, the namespace's init,
                        joins its cgroups (then its own cgroup namespace), builds the root
                        (system directories, the interpreter, /dev, /proc, and the whole code
                        cache at a hidden path), pivots into it, forks C, and seals itself to
                        do nothing but reap.
  specialize (channel): C reads the function's spec, binds its code at /var/task, unmounts
                        the rest of the cache, mounts /tmp, sets its limits, drops
                        privileges, installs seccomp and becomes the runtime.

    zygote --clone--> B (pid 1: reaps orphans, exits with C's status) --fork--> C

When B dies the kernel kills everything left in the namespace: nothing leaks.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

from lamina_inside import linux

NAMESPACE_FLAGS = {
    "mnt": linux.CLONE_NEWNS,
    "uts": linux.CLONE_NEWUTS,
    "ipc": linux.CLONE_NEWIPC,
    "net": linux.CLONE_NEWNET,
    "pid": linux.CLONE_NEWPID,
    "cgroup": linux.CLONE_NEWCGROUP,
    "user": linux.CLONE_NEWUSER,
}

DEVICES = ("null", "zero", "full", "random", "urandom")
DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
)


def clone_flags(stem: dict[str, Any]) -> int:
    """The namespaces B is cloned into: all but the cgroup namespace, which B enters once it
    has joined its cgroups (so that they are the root it sees)."""
    flags = 0
    for name in stem.get("namespaces", ()):
        if name != "cgroup":
            flags |= NAMESPACE_FLAGS[name]
    return flags


def enter(stem: dict[str, Any], uid: int, gid: int) -> None:
    """In B, just cloned: map root to the zygote's `uid`/`gid` (user namespace), start a
    session, join the cgroups (children inherit them), then the cgroup namespace."""
    namespaces = stem.get("namespaces", ())
    if "user" in namespaces:
        linux.write_id_maps("self", f"0 {uid} 1", f"0 {gid} 1", deny_setgroups=True)
    os.setsid()
    for path in stem.get("procs_files", ()):
        with open(path, "w") as procs:
            procs.write("0")  # 0: the writer itself (its pid here is 1, not the host's)
    if "cgroup" in namespaces:
        linux.unshare(linux.CLONE_NEWCGROUP)


CODE_CACHE = "/.lamina-code"  # the cache, mounted until specialization picks one tree
DEFAULT_TMP_MB = 512  # Lambda's default EphemeralStorage; other sizes remount /tmp


def prepare(stem: dict[str, Any]) -> None:
    """In B, ahead of demand: the generic root, host name and loopback."""
    namespaces = stem.get("namespaces", ())
    root = stem.get("root")
    if root:
        _prepare_root(root)
    if "uts" in namespaces:
        linux.sethostname(stem.get("hostname", "lambda"))
    if "net" in namespaces:
        linux.loopback_up()


def configure_network(network: dict[str, Any]) -> None:
    """In C, ahead of demand: eth0's address and the default route (egress mode)."""
    linux.configure_ipv4("eth0", network["address"], network["prefix"], network["gateway"])


def mount_function(stem: dict[str, Any], spec: dict[str, Any]) -> None:
    """In C, on demand: the function's code at /var/task, its layers at /opt, its /tmp, and
    no other code."""
    if not stem.get("root"):
        return
    source = f"{CODE_CACHE}/{spec['code_name']}"
    linux.bind_mount(source, "/var/task", readonly=True, recursive=False)
    mount_layers([f"{CODE_CACHE}/{name}" for name in spec.get("layers", ())], "/opt")
    linux.umount2(CODE_CACHE, linux.MNT_DETACH)
    size = int(spec["tmp_size_mb"])
    if size != DEFAULT_TMP_MB:  # the stem mounted the default size already
        flags = linux.MS_REMOUNT | linux.MS_NOSUID | linux.MS_NODEV
        linux.mount(None, "/tmp", None, flags, f"size={size}m,mode=1777")


def mount_layers(trees: list[str], target: str) -> None:
    """Layers in order at `target`, later layers' files over earlier ones' (AWS extracts them
    into /opt in order). One layer is a read-only bind; several, a read-only overlay whose
    lowerdir lists the last layer first (the leftmost lower wins) and needs no upperdir. The
    mounts hold their trees, so the code cache can be detached afterwards."""
    if not trees:
        return
    if len(trees) == 1:
        linux.bind_mount(trees[0], target, readonly=True, recursive=False)
        return
    flags = linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
    lower = ":".join(reversed(trees))
    linux.mount("overlay", target, "overlay", flags, f"lowerdir={lower}")


# The runtime-to-be installs seccomp in two steps: everything but the mount calls ahead of
# demand (its specialization still mounts the function's code), then the mount calls.
MOUNT_CALLS = ("mount", "umount2", "mount_setattr")
EARLY_DENYLIST = tuple(name for name in linux.DEFAULT_DENYLIST if name not in MOUNT_CALLS)
_early_filter = False


def prepare_seccomp() -> None:
    """Build both filters once, in the zygote."""
    for names in (linux.DEFAULT_DENYLIST, EARLY_DENYLIST, MOUNT_CALLS):
        linux.prepare_seccomp_denylist(names)


def seal_early(stem: dict[str, Any]) -> None:
    """In C, ahead of demand: the seccomp filter minus the mount calls."""
    global _early_filter
    if stem.get("init_seal", {}).get("seccomp"):
        linux.install_seccomp_denylist(EARLY_DENYLIST)
        _early_filter = True


def seal(spec: dict[str, Any]) -> None:
    """Limits, identity, no new privileges, seccomp: the last steps before running code."""
    linux.set_rlimits({k: (v[0], v[1]) for k, v in spec.get("rlimits", {}).items()})
    if spec.get("uid") is not None:
        linux.drop_privileges(int(spec["uid"]), int(spec["gid"]))
    linux.set_no_new_privs()
    if spec.get("seccomp"):
        linux.install_seccomp_denylist(MOUNT_CALLS if _early_filter else linux.DEFAULT_DENYLIST)


def _prepare_root(root: dict[str, Any]) -> None:
    mountpoint: str = root["mountpoint"]
    linux.mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.mount("tmpfs", mountpoint, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, "size=1m,mode=0755")
    for path, target in root.get("links", ()):
        os.makedirs(os.path.dirname(mountpoint + path), exist_ok=True)
        os.symlink(target, mountpoint + path)
    for bind in root.get("binds", ()):
        target = mountpoint + bind["dst"]
        _make_target(bind["src"], target)
        linux.bind_mount(bind["src"], target, readonly=bind.get("ro", True))
    for directory in ("/tmp", "/var/task", "/opt", "/proc", CODE_CACHE):
        os.makedirs(mountpoint + directory, exist_ok=True)
    tmp_options = f"size={DEFAULT_TMP_MB}m,mode=1777"
    linux.mount(
        "tmpfs", mountpoint + "/tmp", "tmpfs", linux.MS_NOSUID | linux.MS_NODEV, tmp_options
    )
    linux.bind_mount(root["code_root"], mountpoint + CODE_CACHE, readonly=True)
    _build_dev(mountpoint)
    flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
    linux.mount("proc", mountpoint + "/proc", "proc", flags)
    old = mountpoint + "/.old-root"
    os.makedirs(old, exist_ok=True)
    linux.pivot_root(mountpoint, old)
    os.chdir("/")
    linux.umount2("/.old-root", linux.MNT_DETACH)
    os.rmdir("/.old-root")
    # Nothing outside /tmp is writable: the root tmpfs itself becomes read-only.
    flags = linux.MS_REMOUNT | linux.MS_RDONLY | linux.MS_NOSUID | linux.MS_NODEV
    linux.mount(None, "/", None, flags)


def _make_target(source: str, target: str) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass


def _build_dev(mountpoint: str) -> None:
    dev = mountpoint + "/dev"
    os.makedirs(dev, exist_ok=True)
    linux.mount("tmpfs", dev, "tmpfs", linux.MS_NOSUID | linux.MS_NOEXEC, "size=64k,mode=0755")
    for name in DEVICES:
        target = f"{dev}/{name}"
        with open(target, "a"):
            pass
        linux.bind_mount(f"/dev/{name}", target, readonly=False, recursive=False)
    for name, link in DEV_LINKS:
        os.symlink(link, f"{dev}/{name}")


def ready_runtime(stem: dict[str, Any], log_fd: int) -> None:
    """In C, ahead of demand: everything about becoming a runtime that does not depend on the
    function, so the cold start does not pay for it (stdio, and, for a stem made ahead of
    demand, the memory pages the runtime will write, copied from the zygote now)."""
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    for fd in (log_fd, null):
        if fd > 2:
            os.close(fd)
    # The inherited sys.stdout/stderr were opened on the zygote's fds: start afresh on the log.
    sys.stdout = open(1, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, encoding="utf-8", closefd=False)  # noqa: SIM115
    os.environ.clear()  # the interpreter's paths were moved by the zygote, before it forked
    from lamina_inside import python_runtime

    python_runtime.preload()
    if stem.get("rehearse", True):
        _rehearse_import()
        _rehearse_environment()
        python_runtime.rehearse()


def _rehearse_import() -> None:
    """Walk the import machinery once (find, load, compile, exec) so the handler's import
    finds its code pages already copied from the zygote."""
    import importlib

    with contextlib.suppress(ImportError):
        importlib.import_module("colorsys")
    exec(compile("rehearsal = 1", "<rehearsal>", "exec"), {})


def _rehearse_environment() -> None:
    """Fill and empty the process environment once: the first fill after the fork costs ~0.3
    ms (libc's environment array and allocator pages are copied from the zygote as they are
    written), and the specialization's own fill is then ~20 us."""
    os.environ.update({f"LAMINA_REHEARSAL_{i}": "x" * 64 for i in range(32)})
    os.environ.clear()


def start_runtime(spec: dict[str, Any], channel_fd: int) -> None:
    """In C, on demand: the function's environment and working directory, then the runtime."""
    os.environ.update(spec.get("env", {}))
    os.chdir(spec.get("cwd", "/"))
    entry = spec["entry"]
    import socket

    chan = socket.socket(fileno=channel_fd)
    opt_roots = tuple(spec.get("opt_roots", ("/opt",)))
    if entry["kind"] == "bootstrap":
        from lamina_inside import runtime_api

        runtime_api.serve(chan, entry["argv"], dict(os.environ))
    task_root = entry.get("task_root", "/var/task")
    if entry.get("bridged"):
        from lamina_inside import runtime_api

        runtime_api.serve_python(chan, entry["handler"], task_root, opt_roots, dict(os.environ))
    from lamina_inside import python_runtime

    python_runtime.run(chan, entry["handler"], task_root, opt_roots, spec.get("init_boundary", ""))


_python_paths_moved = False


def move_python_paths(prefix: dict[str, str] | None) -> None:
    """The interpreter is mounted at /var/lang inside; point sys at it (AWS's layout).

    Done once, by the zygote before it forks: every environment inherits the result instead
    of rewriting (and so copying) every module's pages itself. Nothing imports between that
    and the pivot into the sandbox root, where the new paths exist."""
    global _python_paths_moved
    if not prefix or _python_paths_moved:
        return
    _python_paths_moved = True
    old, new = prefix["host"], prefix["sandbox"]
    sys.path[:] = [p.replace(old, new, 1) for p in sys.path if p.startswith(old)]
    for name in ("prefix", "exec_prefix", "base_prefix", "base_exec_prefix"):
        setattr(sys, name, getattr(sys, name).replace(old, new, 1))
    site_packages = f"{new}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
    sys.path.append(site_packages)
    # Packages imported by the zygote find their submodules through __path__: move those too.
    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [p.replace(old, new, 1) for p in search]
    sys.path_importer_cache.clear()
