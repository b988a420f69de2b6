"""What an execution environment is made of, as plain data the zygote applies.

Two parts, applied at different times (see lamina_inside/sandbox.py): the stem is generic and
made ahead of demand; the specialization is the function's and applied on demand. Mechanism
only: no function names or ARNs reach this module; callers pass environment variables built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STRICT_NAMESPACES = ("mnt", "pid", "ipc", "uts", "net", "cgroup")


@dataclass(frozen=True, slots=True)
class Bind:
    source: str
    target: str
    readonly: bool = True


@dataclass(frozen=True, slots=True)
class RootFs:
    """A fresh root: a read-only tmpfs with bind mounts, /dev and /proc."""

    mountpoint: str  # an empty host directory; each environment mounts over it privately
    binds: tuple[Bind, ...]
    code_root: str  # the extracted-code cache; only the function's own tree stays mounted
    links: tuple[tuple[str, str], ...] = ()  # (path, target): e.g. /bin -> usr/bin


@dataclass(frozen=True, slots=True)
class StemSpec:
    """The generic part: cgroups, namespaces, the root without the function's code."""

    env_id: str
    procs_files: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    root: RootFs | None = None
    hostname: str = "lambda"
    # How the init seals itself once the runtime is forked: uid/gid, seccomp.
    init_uid: int | None = None
    init_seccomp: bool = False
    python_prefix: tuple[str, str] | None = None  # (host prefix, prefix inside the sandbox)
    # Rehearse the import and one invocation while waiting (a stem made ahead of demand); one
    # made on demand is specialized at once, and its real import copies the same pages.
    rehearse: bool = True

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "env_id": self.env_id,
            "init_seal": {
                "uid": self.init_uid,
                "gid": self.init_uid,
                "seccomp": self.init_seccomp,
            },
            "python_prefix": (
                {"host": self.python_prefix[0], "sandbox": self.python_prefix[1]}
                if self.python_prefix is not None
                else None
            ),
            "procs_files": list(self.procs_files),
            "namespaces": list(self.namespaces),
            "hostname": self.hostname,
            "rehearse": self.rehearse,
        }
        if self.root is not None:
            wire["root"] = {
                "mountpoint": self.root.mountpoint,
                "binds": [
                    {"src": b.source, "dst": b.target, "ro": b.readonly} for b in self.root.binds
                ],
                "links": [list(link) for link in self.root.links],
                "code_root": self.root.code_root,
            }
        return wire


@dataclass(frozen=True, slots=True)
class PythonEntry:
    handler: str
    task_root: str
    bridged: bool = False  # behind the Runtime API bridge, which serves extensions


@dataclass(frozen=True, slots=True)
class BootstrapEntry:
    """A runtime that talks to the Runtime API: the environment serves it and runs `argv`."""

    argv: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Specialization:
    """The function's part: its code, /tmp, identity, limits and what to run."""

    code_dir: str  # host path of the function's extracted code
    tmp_size_mb: int
    entry: PythonEntry | BootstrapEntry
    env: Mapping[str, str]
    cwd: str
    uid: int | None = None
    gid: int | None = None
    rlimits: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    seccomp: bool = False
    # Host paths of the layers' extracted trees, in the function's order: the sandbox mounts
    # them at /opt (later layers win). Without a sandbox root (rlimits) there is no /opt, and
    # `opt_roots` names the host trees instead, first wins (the Python runtime's sys.path).
    layer_dirs: tuple[str, ...] = ()
    opt_roots: tuple[str, ...] = ("/opt",)
    # Written by the Python runtime to its output once init succeeded, before READY: where the
    # init's output ends when the first invocation was sent with the specialization.
    init_boundary: str = ""

    def to_wire(self) -> dict[str, Any]:
        entry: dict[str, Any] = (
            {
                "kind": "python",
                "handler": self.entry.handler,
                "task_root": self.entry.task_root,
                "bridged": self.entry.bridged,
            }
            if isinstance(self.entry, PythonEntry)
            else {"kind": "bootstrap", "argv": list(self.entry.argv)}
        )
        wire: dict[str, Any] = {
            "code_dir": self.code_dir,
            "code_name": self.code_dir.rstrip("/").rsplit("/", 1)[-1],
            "tmp_size_mb": self.tmp_size_mb,
            "entry": entry,
            "env": dict(self.env),
            "cwd": self.cwd,
            "uid": self.uid,
            "gid": self.gid,
            "rlimits": {k: list(v) for k, v in self.rlimits.items()},
            "seccomp": self.seccomp,
            "layers": [d.rstrip("/").rsplit("/", 1)[-1] for d in self.layer_dirs],
            "opt_roots": list(self.opt_roots),
            "init_boundary": self.init_boundary,
        }
        return wire
