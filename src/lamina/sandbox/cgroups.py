"""Control groups: hard memory, CPU and process-count limits for one execution environment each.

Lamina owns one parent group (the *prefix*, e.g. ``lamina-<instance>``) and puts every
environment in a child ``<prefix>/<name>``, so the parent never holds processes itself (cgroup v2's
"no internal processes" rule) and everything Lamina made can be found and swept after a crash.

Both cgroup versions are supported and told apart at runtime from ``/proc/self/mountinfo``:

* v1: one hierarchy per controller (``memory``, ``cpu``, ``pids``; several controllers may share a
  hierarchy, e.g. ``cpu,cpuacct``). An environment is one directory in each hierarchy and a process
  joins it by writing its pid into every ``cgroup.procs`` file.
* v2: one unified tree. Controllers are enabled in ``cgroup.subtree_control`` of the tree's root
  and of the parent group; an environment is one directory with one ``cgroup.procs`` file.

Processes join a group themselves (the child writes ``os.getpid()`` into each of
``Cgroup.procs_files`` before running untrusted code), so nothing here forks or execs.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

MOUNTINFO = Path("/proc/self/mountinfo")
CONTROLLERS = ("memory", "cpu", "pids")  # "memory" is required, the others are used when present
CPU_PERIOD_US = 100_000
MB_PER_VCPU = 1769  # Lambda: a function with 1769 MB has the equivalent of one vCPU
MIN_VCPU_DIVISOR = 16  # ... and never less than 1/16 vCPU
MIN_CPU_QUOTA_US = 1000  # the kernel refuses CFS quotas below 1 ms

KILL_TIMEOUT_S = 5.0  # kill_all gives up (and logs) when processes outlive this
RMDIR_TIMEOUT_S = 1.0  # rmdir retries EBUSY this long while killed processes finish exiting
_BACKOFF_START_S = 0.0005
_BACKOFF_MAX_S = 0.02

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


class CgroupError(RuntimeError):
    """A cgroup operation failed: the group cannot be created, limited, emptied or removed."""


class CgroupUnavailable(CgroupError):
    """Cgroups cannot be used here (not root, no writable cgroup filesystem, or closed)."""


# --- values --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CgroupLimits:
    """The hard limits of one environment.

    ``memory_bytes`` covers RAM and swap alike (swap can never extend it). ``cpu_quota_us`` is CPU
    time per ``CPU_PERIOD_US`` (None: unlimited). ``pids_max`` bounds processes plus threads.
    """

    memory_bytes: int
    cpu_quota_us: int | None
    pids_max: int

    def __post_init__(self) -> None:
        if self.memory_bytes <= 0:
            raise ValueError(f"memory_bytes must be positive, not {self.memory_bytes}")
        if self.cpu_quota_us is not None and self.cpu_quota_us < MIN_CPU_QUOTA_US:
            raise ValueError(f"cpu_quota_us must be at least {MIN_CPU_QUOTA_US} or None")
        if self.pids_max <= 0:
            raise ValueError(f"pids_max must be positive, not {self.pids_max}")


@dataclass(frozen=True, slots=True)
class CgroupLayout:
    """Where the controllers live: ``hierarchies`` maps a controller to its mount directory.

    For v2 every controller maps to the unified mount (controllers the kernel does not offer are
    dropped when the manager sets up).
    """

    version: int
    hierarchies: Mapping[str, Path] = field(default_factory=dict)


def cpu_quota_for_memory(memory_mb: int, period_us: int = CPU_PERIOD_US) -> int:
    """CFS quota (µs per ``period_us``) that Lambda's memory-proportional CPU share gives.

    One vCPU at 1769 MB, linear in between; rounded *up* to a whole microsecond (a function never
    gets less than its share); at least 1/16 vCPU (rounded up too) and at most one full period per
    CPU of this machine (``os.cpu_count()``).
    """
    if memory_mb <= 0:
        raise ValueError(f"memory_mb must be positive, not {memory_mb}")
    if period_us <= 0:
        raise ValueError(f"period_us must be positive, not {period_us}")
    share = _ceil_div(memory_mb * period_us, MB_PER_VCPU)
    floor = _ceil_div(period_us, MIN_VCPU_DIVISOR)
    cap = (os.cpu_count() or 1) * period_us
    return max(floor, min(share, cap))


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


# --- layout detection ----------------------------------------------------------------------------


def detect_layout(mountinfo: str) -> CgroupLayout | None:
    """Read the cgroup layout from the text of ``/proc/<pid>/mountinfo``; None without cgroups.

    v1 wins when some v1 hierarchy carries the memory controller (systemd's "hybrid" mode mounts
    an empty v2 tree at ``/sys/fs/cgroup/unified`` next to the v1 hierarchies); otherwise a v2
    mount means v2.
    """
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for line in mountinfo.splitlines():
        mount = _parse_mount(line)
        if mount is None:
            continue
        mount_point, fstype, options = mount
        if fstype == "cgroup2" and v2 is None:
            v2 = mount_point
        elif fstype == "cgroup":
            for controller in CONTROLLERS:
                if controller in options:
                    v1.setdefault(controller, mount_point)
    if "memory" in v1:
        return CgroupLayout(1, v1)
    if v2 is not None:
        return CgroupLayout(2, dict.fromkeys(CONTROLLERS, v2))
    return None


def _parse_mount(line: str) -> tuple[Path, str, set[str]] | None:
    """(mount point, filesystem type, super options) of one mountinfo line."""
    head, sep, tail = line.partition(" - ")
    if not sep:
        return None
    fields, after = head.split(), tail.split()
    if len(fields) < 5 or len(after) < 3:
        return None
    mount_point = _OCTAL_ESCAPE.sub(lambda m: chr(int(m[1], 8)), fields[4])
    return Path(mount_point), after[0], set(after[2].split(","))


def layout_from_root(root: Path, version: int | None = None) -> CgroupLayout:
    """The layout of a cgroup filesystem rooted at ``root`` (``root/<controller>`` on v1).

    With ``version=None``, a ``cgroup.controllers`` file at ``root`` means v2.
    """
    if version is None:
        version = 2 if (root / "cgroup.controllers").is_file() else 1
    if version == 2:
        return CgroupLayout(2, dict.fromkeys(CONTROLLERS, root))
    if version == 1:
        return CgroupLayout(1, {c: root / c for c in CONTROLLERS if (root / c).is_dir()})
    raise ValueError(f"cgroup version must be 1 or 2, not {version}")


# --- file primitives (module functions so tests can stand in for the kernel) ---------------------


def _mkdir(path: Path) -> None:
    os.mkdir(path, 0o755)


def _rmdir(path: Path) -> None:
    os.rmdir(path)


def _read(path: Path) -> str:
    return path.read_text()


def _read_int(path: Path) -> int:
    return int(_read(path).strip())


def _write(path: Path, value: str) -> None:
    """One write(2) of ``value``: cgroup files act on each write call."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _write_optional(path: Path, value: str) -> bool:
    """Write when the file exists (e.g. swap accounting may be off); False when it does not."""
    try:
        _write(path, value)
    except FileNotFoundError:
        return False
    return True


def _keyed(text: str) -> dict[str, int]:
    """Parse a flat-keyed file ("key value" per line)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        with suppress(ValueError):
            values[key] = int(value)
    return values


def _retrying(action: Callable[[], None], codes: frozenset[int], timeout: float) -> None:
    """Run ``action``, retrying while it fails with one of ``codes`` and time remains."""
    deadline = time.monotonic() + timeout
    delay = _BACKOFF_START_S
    while True:
        try:
            action()
            return
        except OSError as exc:
            if exc.errno not in codes or time.monotonic() >= deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, _BACKOFF_MAX_S)


def _remove_group_dir(path: Path) -> None:
    """rmdir a group directory and any empty sub-groups; a missing directory is fine."""
    try:
        children = [child for child in path.iterdir() if child.is_dir()]
    except FileNotFoundError:
        return
    for child in children:
        _remove_group_dir(child)
    with suppress(FileNotFoundError):
        _retrying(lambda: _rmdir(path), frozenset({errno.EBUSY}), RMDIR_TIMEOUT_S)


@contextmanager
def _os_errors(what: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise CgroupError(f"{what}: {exc}") from exc


def _validate_name(name: str) -> None:
    if not _NAME.fullmatch(name) or name.startswith("cgroup."):
        raise ValueError(f"invalid cgroup name {name!r}: use letters, digits, '_', '-', '.'")


def _sigkill(pid: int) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# --- one group -----------------------------------------------------------------------------------


class Cgroup:
    """One environment's group: a directory in each hierarchy (v1) or in the unified tree (v2)."""

    __slots__ = ("_dirs", "_oom_base", "_peak_fd", "name", "procs_files", "version")

    def __init__(self, name: str, version: int, dirs: Mapping[str, Path]) -> None:
        if "memory" not in dirs:
            raise ValueError("a cgroup needs the memory controller")
        self.name = name
        self.version = version
        self._dirs = dict(dirs)
        self.procs_files = tuple(str(d / "cgroup.procs") for d in self.directories)
        self._oom_base = 0
        self._peak_fd: int | None = None

    def __repr__(self) -> str:
        return f"Cgroup({self.name!r}, v{self.version}, {self.directories[0]})"

    @property
    def directories(self) -> tuple[Path, ...]:
        """Each directory of the group once (v1 controllers may share a hierarchy)."""
        return tuple(dict.fromkeys(self._dirs.values()))

    def exists(self) -> bool:
        """Whether the group's directories are still there (False once destroyed)."""
        return all(d.is_dir() for d in self.directories)

    def controller_dir(self, controller: str) -> Path | None:
        """The directory holding ``controller``'s files, None if that controller is not used."""
        return self._dirs.get(controller)

    @property
    def _memory(self) -> Path:
        return self._dirs["memory"]

    # --- limits ---

    def set_limits(self, limits: CgroupLimits) -> None:
        with _os_errors(f"cannot set limits of cgroup {self.name}"):
            self._set_memory(limits.memory_bytes)
            cpu = self._dirs.get("cpu")
            if cpu is not None:
                self._set_cpu(cpu, limits.cpu_quota_us)
            pids = self._dirs.get("pids")
            if pids is not None:
                _write(pids / "pids.max", str(limits.pids_max))

    def set_cpu_quota(self, quota_us: int) -> None:
        """Only the CPU share (the period is set with the other limits): one write."""
        cpu = self._dirs.get("cpu")
        if cpu is None:
            return
        with _os_errors(f"cannot set the CPU share of cgroup {self.name}"):
            if self.version == 2:
                _write(cpu / "cpu.max", f"{quota_us} {CPU_PERIOD_US}")
            else:
                _write(cpu / "cpu.cfs_quota_us", str(quota_us))

    def _set_memory(self, limit: int) -> None:
        if self.version == 2:
            _write(self._memory / "memory.max", str(limit))
            _write_optional(self._memory / "memory.swap.max", "0")
            return
        ram = self._memory / "memory.limit_in_bytes"
        memsw = self._memory / "memory.memsw.limit_in_bytes"
        if not memsw.exists():
            _write(ram, str(limit))
            return
        # The kernel keeps memsw >= the RAM limit at every step: raise memsw first, lower it last.
        if limit > _read_int(ram):
            _write(memsw, str(limit))
            _write(ram, str(limit))
        else:
            _write(ram, str(limit))
            _write(memsw, str(limit))

    def _set_cpu(self, cpu: Path, quota_us: int | None) -> None:
        if self.version == 2:
            _write(
                cpu / "cpu.max", f"{quota_us if quota_us is not None else 'max'} {CPU_PERIOD_US}"
            )
            return
        _write(cpu / "cpu.cfs_period_us", str(CPU_PERIOD_US))
        _write(cpu / "cpu.cfs_quota_us", str(quota_us if quota_us is not None else -1))

    # --- counters ---

    def memory_current_bytes(self) -> int:
        name = "memory.current" if self.version == 2 else "memory.usage_in_bytes"
        with _os_errors(f"cannot read memory usage of cgroup {self.name}"):
            return _read_int(self._memory / name)

    def memory_peak_bytes(self) -> int:
        """Highest memory use since creation or the last ``reset_peak``.

        v2 kernels before 5.19 have no ``memory.peak``: the current use stands in for it.
        """
        with _os_errors(f"cannot read peak memory of cgroup {self.name}"):
            if self.version == 1:
                # Read on every invocation's REPORT line: keep the file open, pread is cheap.
                if self._peak_fd is None:
                    path = self._memory / "memory.max_usage_in_bytes"
                    self._peak_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                return int(os.pread(self._peak_fd, 64, 0).decode().strip())
            if self._peak_fd is not None:
                return int(os.pread(self._peak_fd, 64, 0).decode().strip())
            try:
                return _read_int(self._memory / "memory.peak")
            except FileNotFoundError:
                return _read_int(self._memory / "memory.current")

    def reset_peak(self) -> None:
        """Restart peak tracking from the current use.

        v2 (kernel >= 6.12) resets ``memory.peak`` per open file: the group keeps the descriptor
        it reset through and reads the peak from it. Older v2 kernels: no-op.
        """
        with _os_errors(f"cannot reset peak memory of cgroup {self.name}"):
            if self.version == 1:
                _write(self._memory / "memory.max_usage_in_bytes", "0")
                _write_optional(self._memory / "memory.memsw.max_usage_in_bytes", "0")
                return
            self._reset_peak_v2()

    def _reset_peak_v2(self) -> None:
        if self._peak_fd is None:
            try:
                self._peak_fd = os.open(self._memory / "memory.peak", os.O_RDWR | os.O_CLOEXEC)
            except OSError as exc:  # absent (< 5.19) or read-only (< 6.12)
                logger.debug("memory.peak of %s cannot be reset: %s", self.name, exc)
                return
        try:
            os.pwrite(self._peak_fd, b"reset\n", 0)
        except OSError as exc:
            logger.debug("memory.peak of %s cannot be reset: %s", self.name, exc)
            self._close_peak_fd()

    def _close_peak_fd(self) -> None:
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None

    def oom_kills(self) -> int:
        """Processes the OOM killer killed in this group since creation or ``reset_counters``."""
        with _os_errors(f"cannot read OOM events of cgroup {self.name}"):
            return max(0, self._oom_kills_total() - self._oom_base)

    def _oom_kills_total(self) -> int:
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        return _keyed(_read(self._memory / name)).get("oom_kill", 0)

    def reset_counters(self) -> None:
        """Start peak memory and the OOM kill count afresh (for a group being reused)."""
        self.reset_peak()
        with _os_errors(f"cannot reset counters of cgroup {self.name}"):
            self._oom_base = self._oom_kills_total()
            if self.version == 1:
                _write_optional(self._memory / "memory.failcnt", "0")

    def reclaim(self) -> None:
        """Best effort: drop the page cache an emptied group is still charged for."""
        try:
            if self.version == 1:
                _write_optional(self._memory / "memory.force_empty", "0")
            else:
                current = _read_int(self._memory / "memory.current")
                if current:
                    _write_optional(self._memory / "memory.reclaim", str(current))
        except OSError as exc:  # EAGAIN when not everything could be reclaimed: fine
            logger.debug("reclaiming memory of cgroup %s: %s", self.name, exc)

    # --- processes ---

    def pids(self) -> list[int]:
        """Processes in the group (in any of its hierarchies); empty once destroyed."""
        found: set[int] = set()
        with _os_errors(f"cannot list processes of cgroup {self.name}"):
            for procs in self.procs_files:
                try:
                    found.update(int(pid) for pid in _read(Path(procs)).split())
                except FileNotFoundError:
                    continue
        return sorted(found)

    def kill_all(self) -> None:
        """SIGKILL every process in the group and wait (bounded) until the group is empty.

        v2 with ``cgroup.kill`` (5.14+) kills atomically, fork bombs included; otherwise every
        listed pid is killed again on each pass until none is left. Gives up with a warning after
        ``KILL_TIMEOUT_S`` (e.g. a process stuck in uninterruptible sleep); ``pids()`` tells.
        """
        if self.version == 2:
            with _os_errors(f"cannot kill cgroup {self.name}"):
                _write_optional(self._memory / "cgroup.kill", "1")  # absent before 5.14
        deadline = time.monotonic() + KILL_TIMEOUT_S
        delay = _BACKOFF_START_S
        while pids := self.pids():
            if time.monotonic() >= deadline:
                logger.warning(
                    "cgroup %s still holds %d processes after SIGKILL", self.name, len(pids)
                )
                return
            for pid in pids:
                _sigkill(pid)
            time.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MAX_S)

    def destroy(self) -> None:
        """Kill everything in the group and remove its directories; safe to call again."""
        self.kill_all()
        self._close_peak_fd()
        with _os_errors(f"cannot remove cgroup {self.name}"):
            for directory in self.directories:
                _remove_group_dir(directory)


# --- the manager ---------------------------------------------------------------------------------


class CgroupManager:
    """Lamina's parent group in every needed hierarchy, and the environments under it.

    ``root=None`` finds the cgroup mounts in ``/proc/self/mountinfo``; an explicit ``root`` is a
    cgroup filesystem laid out like ``/sys/fs/cgroup`` (``version=None``: detect from it).
    Never raises for a missing or read-only cgroup filesystem: ``available`` is then False and
    ``create`` raises ``CgroupUnavailable``.
    """

    def __init__(
        self, prefix: str, *, root: Path | None = None, version: int | None = None
    ) -> None:
        _validate_name(prefix)
        self.prefix = prefix
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._parents: dict[str, Path] = {}
        layout = self._find_layout(root, version)
        self.version = layout.version if layout is not None else (version or 2)
        self.available = layout is not None and self._set_up(layout)

    @staticmethod
    def _find_layout(root: Path | None, version: int | None) -> CgroupLayout | None:
        if root is not None:
            return layout_from_root(root, version)
        try:
            layout = detect_layout(MOUNTINFO.read_text())
        except OSError as exc:
            logger.warning("cannot read %s: %s", MOUNTINFO, exc)
            return None
        if layout is not None and version is not None and layout.version != version:
            logger.warning("cgroup v%d requested but this host uses v%d", version, layout.version)
            return None
        return layout

    @property
    def parent_dirs(self) -> tuple[Path, ...]:
        """The parent group's directory in each hierarchy (empty when unavailable or closed)."""
        return tuple(dict.fromkeys(self._parents.values()))

    def _set_up(self, layout: CgroupLayout) -> bool:
        hierarchies = dict(layout.hierarchies)
        created: list[Path] = []
        try:
            if layout.version == 2:
                hierarchies = self._enable_v2_controllers(hierarchies)
            if "memory" not in hierarchies:
                logger.warning("cgroups unavailable: no memory controller")
                return False
            for base in dict.fromkeys(hierarchies.values()):
                created += self._make_parent(layout.version, base / self.prefix, hierarchies)
        except OSError as exc:
            logger.warning("cgroups unavailable under %s: %s", self.prefix, exc)
            for directory in reversed(created):
                with suppress(OSError):
                    _rmdir(directory)
            return False
        self._parents = {c: base / self.prefix for c, base in hierarchies.items()}
        missing = [c for c in CONTROLLERS if c not in hierarchies]
        if missing:
            logger.warning("cgroup controllers unavailable, not limited: %s", ", ".join(missing))
        logger.info("cgroup v%d parent %s ready", layout.version, self.prefix)
        return True

    @staticmethod
    def _enable_v2_controllers(hierarchies: dict[str, Path]) -> dict[str, Path]:
        """Enable our controllers in the v2 root's subtree_control; return the usable ones."""
        root = hierarchies["memory"]
        offered = _read(root / "cgroup.controllers").split()
        usable = {c: root for c in CONTROLLERS if c in offered}
        enabled = _read(root / "cgroup.subtree_control").split()
        missing = [c for c in usable if c not in enabled]
        if missing:
            _write(root / "cgroup.subtree_control", " ".join(f"+{c}" for c in missing))
        return usable

    @staticmethod
    def _make_parent(version: int, parent: Path, controllers: Mapping[str, Path]) -> list[Path]:
        """Create the parent group (kept if it exists); return it if this call created it."""
        created = []
        try:
            _mkdir(parent)
            created.append(parent)
        except FileExistsError:
            pass
        if version == 2:  # children get our controllers; the parent itself holds no process
            _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in controllers))
        else:
            with suppress(OSError):  # always on in recent kernels; absent outside memory
                _write(parent / "memory.use_hierarchy", "1")
        return created

    def _group(self, name: str) -> Cgroup:
        return Cgroup(name, self.version, {c: p / name for c, p in self._parents.items()})

    def new_name(self) -> str:
        """A fresh ``env-<n>`` name (counter only grows; names still on disk are skipped)."""
        with self._lock:
            while True:
                name = f"env-{next(self._counter)}"
                if not any((p / name).exists() for p in self.parent_dirs):
                    return name

    def create(self, name: str, limits: CgroupLimits | None = None) -> Cgroup:
        """Create ``<prefix>/<name>`` in every hierarchy; ``limits=None`` leaves kernel defaults."""
        if not self.available:
            raise CgroupUnavailable(f"cgroups are not available for {self.prefix}")
        _validate_name(name)
        group = self._group(name)
        created: list[Path] = []
        try:
            for directory in group.directories:
                _mkdir(directory)
                created.append(directory)
            if limits is not None:
                group.set_limits(limits)
        except (OSError, CgroupError) as exc:
            for directory in reversed(created):
                with suppress(OSError):
                    _rmdir(directory)
            if isinstance(exc, CgroupError):
                raise
            raise CgroupError(f"cannot create cgroup {self.prefix}/{name}: {exc}") from exc
        logger.debug("created cgroup %s/%s", self.prefix, name)
        return group

    def sweep(self) -> int:
        """Destroy every child group under the prefix (leftovers of a crash); return how many.

        Destroys groups in use too: call it before creating any, or when shutting down.
        """
        names: set[str] = set()
        for parent in self.parent_dirs:
            with suppress(FileNotFoundError):
                names.update(child.name for child in parent.iterdir() if child.is_dir())
        swept = 0
        for name in sorted(names):
            try:
                self._group(name).destroy()
            except CgroupError as exc:
                logger.warning("cannot sweep cgroup %s/%s: %s", self.prefix, name, exc)
                continue
            swept += 1
        if swept:
            logger.info("swept %d cgroups under %s", swept, self.prefix)
        return swept

    def close(self) -> None:
        """Sweep, then remove the parent groups. Idempotent; ``create`` fails afterwards."""
        if not self.available:
            return
        self.sweep()
        with _os_errors(f"cannot remove cgroup parent {self.prefix}"):
            for parent in self.parent_dirs:
                _remove_group_dir(parent)
        self.available = False
        self._parents = {}


# --- the pool ------------------------------------------------------------------------------------


class CgroupPool:
    """Empty groups made ahead of time so a cold start only writes limits (no mkdir).

    Thread-safe. ``refill`` tops the pool up to ``size`` and belongs off the hot path.
    """

    def __init__(self, manager: CgroupManager, size: int) -> None:
        if size < 0:
            raise ValueError(f"pool size must not be negative, not {size}")
        self._manager = manager
        self._size = size
        self._idle: list[Cgroup] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def idle(self) -> int:
        """How many ready groups the pool holds."""
        with self._lock:
            return len(self._idle)

    def acquire(self, limits: CgroupLimits) -> Cgroup:
        """A group with ``limits`` applied and fresh counters: a pooled one, else a new one."""
        with self._lock:
            group = self._idle.pop() if self._idle else None
        if group is not None:
            try:
                self._prepare(group, limits)
                return group
            except CgroupError as exc:
                logger.warning("discarding pooled cgroup %s: %s", group.name, exc)
                self._discard(group)
        group = self._manager.create(self._manager.new_name())
        try:
            self._prepare(group, limits)
        except CgroupError:
            self._discard(group)
            raise
        return group

    @staticmethod
    def _prepare(group: Cgroup, limits: CgroupLimits) -> None:
        group.set_limits(limits)
        group.reset_counters()

    def release(self, group: Cgroup) -> None:
        """Empty the group; keep it for reuse when it emptied and there is room, else destroy it."""
        group.kill_all()
        if not group.pids() and group.exists():
            group.reclaim()
            with self._lock:
                if not self._closed and len(self._idle) < self._size:
                    self._idle.append(group)
                    return
        group.destroy()

    def refill(self) -> None:
        """Create groups until the pool holds ``size`` of them."""
        while True:
            with self._lock:
                if self._closed or len(self._idle) >= self._size:
                    return
            group = self._manager.create(self._manager.new_name())
            with self._lock:
                if not self._closed and len(self._idle) < self._size:
                    self._idle.append(group)
                    continue
            group.destroy()
            return

    def close(self) -> None:
        """Destroy the pooled groups; groups handed out stay with their holders."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for group in idle:
            self._discard(group)

    @staticmethod
    def _discard(group: Cgroup) -> None:
        try:
            group.destroy()
        except CgroupError as exc:
            logger.warning("cannot destroy cgroup %s: %s", group.name, exc)
