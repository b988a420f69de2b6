"""Cgroups: real limits on this host's cgroup filesystem, and the v2 paths against a fake tree.

The real tests fork children that put themselves into a group (each writes its own pid into every
``procs_files`` entry, then reports over a pipe) before doing the work the limit must stop.
"""

from __future__ import annotations

import errno
import os
import select
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from lamina.sandbox import cgroups
from lamina.sandbox.cgroups import (
    CPU_PERIOD_US,
    Cgroup,
    CgroupError,
    CgroupLimits,
    CgroupManager,
    CgroupPool,
    CgroupUnavailable,
    cpu_quota_for_memory,
    detect_layout,
    layout_from_root,
)

MiB = 1 << 20
ROOMY = CgroupLimits(memory_bytes=256 * MiB, cpu_quota_us=None, pids_max=64)


# --- children in groups --------------------------------------------------------------------------


class Child:
    """A forked process that joined a group; talks back one line at a time."""

    def __init__(self, pid: int, fd: int) -> None:
        self.pid = pid
        self._fd = fd
        self._buffer = b""
        self.status: int | None = None

    def read_line(self, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self._fd], [], [], max(remaining, 0))
            if not ready:
                raise TimeoutError(f"child {self.pid} said nothing")
            chunk = os.read(self._fd, 4096)
            if not chunk:
                raise EOFError(f"child {self.pid} closed its pipe")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def wait(self) -> int:
        if self.status is None:
            _, self.status = os.waitpid(self.pid, 0)
            os.close(self._fd)
        return self.status

    def reap(self) -> None:
        if self.status is None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.wait()


def _say(fd: int, line: str) -> None:
    os.write(fd, f"{line}\n".encode())


def _join(group: Cgroup) -> None:
    for path in group.procs_files:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, str(os.getpid()).encode())
        finally:
            os.close(fd)


@pytest.fixture
def spawn() -> Iterator[Callable[[Cgroup, Callable[[int], None]], Child]]:
    """Fork a child that joins the group, says "joined", then runs ``work(pipe_fd)``."""
    children: list[Child] = []

    def start(group: Cgroup, work: Callable[[int], None]) -> Child:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 0
            try:
                os.close(read_fd)
                _join(group)
                _say(write_fd, "joined")
                work(write_fd)
            except BaseException:
                code = 70
            finally:
                os._exit(code)
        os.close(write_fd)
        child = Child(pid, read_fd)
        children.append(child)
        assert child.read_line() == "joined"
        return child

    yield start
    for child in children:
        child.reap()


def _sleep_forever(_fd: int) -> None:
    time.sleep(60)


def _gone(pid: int) -> bool:
    """Dead: no longer in /proc, or a zombie waiting for a reaper that is not us."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def _killed_by_sigkill(status: int) -> bool:
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


# --- the real cgroup filesystem ------------------------------------------------------------------


@pytest.fixture(scope="session")
def manager() -> Iterator[CgroupManager]:
    """One manager per session under a unique prefix; nothing of it may survive the session."""
    mgr = CgroupManager(f"lamina-test-{uuid.uuid4().hex[:12]}")
    if not mgr.available:
        pytest.skip("needs root and a writable cgroup filesystem")
    parents = mgr.parent_dirs
    assert parents
    assert all(p.is_dir() for p in parents)
    yield mgr
    mgr.close()
    assert not [p for p in parents if p.exists()]


@pytest.fixture
def make_group(manager: CgroupManager) -> Iterator[Callable[[CgroupLimits], Cgroup]]:
    groups: list[Cgroup] = []

    def make(limits: CgroupLimits) -> Cgroup:
        group = manager.create(manager.new_name(), limits)
        groups.append(group)
        return group

    yield make
    for group in groups:
        group.destroy()


def _file(group: Cgroup, controller: str, name: str) -> str:
    directory = group.controller_dir(controller)
    assert directory is not None
    return (directory / name).read_text().strip()


def _read_back(manager: CgroupManager, group: Cgroup) -> tuple[int, int | None, int]:
    """(memory, cpu quota, pids) as the kernel reports them."""
    if manager.version == 1:
        memory = int(_file(group, "memory", "memory.limit_in_bytes"))
        memsw = group.controller_dir("memory")
        assert memsw is not None
        if (memsw / "memory.memsw.limit_in_bytes").exists():
            assert int(_file(group, "memory", "memory.memsw.limit_in_bytes")) == memory
        assert int(_file(group, "cpu", "cpu.cfs_period_us")) == CPU_PERIOD_US
        quota = int(_file(group, "cpu", "cpu.cfs_quota_us"))
        return memory, (None if quota == -1 else quota), int(_file(group, "pids", "pids.max"))
    memory = int(_file(group, "memory", "memory.max"))
    quota_text, period = _file(group, "cpu", "cpu.max").split()
    assert int(period) == CPU_PERIOD_US
    quota_v2 = None if quota_text == "max" else int(quota_text)
    return memory, quota_v2, int(_file(group, "pids", "pids.max"))


def test_detects_the_host(manager: CgroupManager) -> None:
    expected = detect_layout(Path("/proc/self/mountinfo").read_text())
    assert expected is not None
    assert manager.version == expected.version
    assert all(p.name == manager.prefix for p in manager.parent_dirs)


def test_limits_read_back(manager: CgroupManager, make_group: Callable[..., Cgroup]) -> None:
    group = make_group(CgroupLimits(64 * MiB, 50_000, 32))
    assert _read_back(manager, group) == (64 * MiB, 50_000, 32)
    assert len(group.procs_files) == len(group.directories)
    assert all(Path(f).is_file() for f in group.procs_files)
    # Raising then lowering memory exercises both orders of the v1 RAM / RAM+swap limits.
    group.set_limits(CgroupLimits(512 * MiB, None, 100))
    assert _read_back(manager, group) == (512 * MiB, None, 100)
    group.set_limits(CgroupLimits(16 * MiB, 7236, 8))
    assert _read_back(manager, group) == (16 * MiB, 7236, 8)
    group.set_cpu_quota(100_000)  # the function's share after its init: nothing else moves
    assert _read_back(manager, group) == (16 * MiB, 100_000, 8)


def test_memory_limit_kills_with_sigkill(
    make_group: Callable[..., Cgroup], spawn: Callable[..., Child]
) -> None:
    group = make_group(CgroupLimits(64 * MiB, None, 16))
    assert group.oom_kills() == 0

    def hog(fd: int) -> None:
        data = b"\x01" * (256 * MiB)
        _say(fd, f"survived {len(data)}")

    child = spawn(group, hog)
    assert _killed_by_sigkill(child.wait())
    assert group.oom_kills() >= 1
    assert group.memory_peak_bytes() <= 64 * MiB


def test_memory_peak_grows(make_group: Callable[..., Cgroup], spawn: Callable[..., Child]) -> None:
    group = make_group(CgroupLimits(128 * MiB, None, 16))
    before = group.memory_peak_bytes()

    def touch(fd: int) -> None:
        data = b"\x01" * (32 * MiB)
        _say(fd, f"holding {len(data)}")
        time.sleep(60)

    child = spawn(group, touch)
    assert child.read_line() == f"holding {32 * MiB}"
    assert group.memory_current_bytes() >= 32 * MiB
    assert group.memory_peak_bytes() >= before + 32 * MiB
    group.kill_all()
    assert _killed_by_sigkill(child.wait())
    group.reset_peak()
    assert group.memory_peak_bytes() < 32 * MiB
    assert group.oom_kills() == 0


def test_pids_max_stops_forks(
    make_group: Callable[..., Cgroup], spawn: Callable[..., Child]
) -> None:
    group = make_group(CgroupLimits(128 * MiB, None, 16))

    def fork_many(fd: int) -> None:
        forked = 0
        try:
            for _ in range(40):
                if os.fork() == 0:
                    time.sleep(60)
                    os._exit(0)
                forked += 1
        except BlockingIOError as exc:
            _say(fd, f"refused {forked} {exc.errno}")
        else:
            _say(fd, f"allowed {forked}")
        time.sleep(60)

    child = spawn(group, fork_many)
    # The child itself is one of the 16 tasks.
    assert child.read_line() == f"refused 15 {errno.EAGAIN}"
    assert len(group.pids()) == 16
    group.kill_all()
    assert group.pids() == []
    assert _killed_by_sigkill(child.wait())


def test_kill_all_kills_children_and_grandchildren(
    make_group: Callable[..., Cgroup], spawn: Callable[..., Child]
) -> None:
    group = make_group(ROOMY)

    def with_grandchild(fd: int) -> None:
        grandchild = os.fork()
        if grandchild == 0:
            time.sleep(60)
            os._exit(0)
        _say(fd, str(grandchild))
        time.sleep(60)

    child = spawn(group, with_grandchild)
    grandchild = int(child.read_line())
    assert set(group.pids()) == {child.pid, grandchild}
    group.kill_all()
    assert group.pids() == []
    assert _killed_by_sigkill(child.wait())
    assert _gone(grandchild)
    group.kill_all()  # an empty group: nothing to do


def test_destroy_removes_directories_and_is_idempotent(
    manager: CgroupManager, spawn: Callable[..., Child]
) -> None:
    group = manager.create(manager.new_name(), ROOMY)
    child = spawn(group, _sleep_forever)
    assert all(d.is_dir() for d in group.directories)
    group.destroy()
    assert _killed_by_sigkill(child.wait())
    assert not [d for d in group.directories if d.exists()]
    group.destroy()
    assert group.pids() == []


def test_create_refuses_bad_and_taken_names(
    manager: CgroupManager, make_group: Callable[..., Cgroup]
) -> None:
    for bad in ("", ".", "..", "../escape", "a/b", "cgroup.procs", "x" * 200, "nul\0"):
        with pytest.raises(ValueError, match="invalid cgroup name"):
            manager.create(bad, ROOMY)
    taken = make_group(ROOMY)
    with pytest.raises(CgroupError, match="cannot create"):
        manager.create(taken.name, ROOMY)
    assert all(d.is_dir() for d in taken.directories)  # the failed create left it alone
    assert manager.new_name() != taken.name


def test_new_names_increase(manager: CgroupManager) -> None:
    first, second = manager.new_name(), manager.new_name()
    assert first.startswith("env-")
    assert int(second.removeprefix("env-")) > int(first.removeprefix("env-"))


def test_sweep_removes_leftovers_of_a_previous_manager(spawn: Callable[..., Child]) -> None:
    prefix = f"lamina-test-{uuid.uuid4().hex[:12]}"
    crashed = CgroupManager(prefix)
    leftovers = [crashed.create(crashed.new_name(), ROOMY) for _ in range(2)]
    child = spawn(leftovers[0], _sleep_forever)
    # "crashed" is never closed; a new manager with the same prefix cleans up after it.
    successor = CgroupManager(prefix)
    try:
        assert successor.parent_dirs == crashed.parent_dirs
        assert successor.sweep() == 2
        assert _killed_by_sigkill(child.wait())
        assert not [d for g in leftovers for d in g.directories if d.exists()]
        assert successor.sweep() == 0
    finally:
        successor.close()
    assert not [p for p in successor.parent_dirs + crashed.parent_dirs if p.exists()]
    with pytest.raises(CgroupUnavailable):
        successor.create("env-1", ROOMY)
    successor.close()  # idempotent


def test_pool_reuses_and_refills(manager: CgroupManager, spawn: Callable[..., Child]) -> None:
    pool = CgroupPool(manager, size=2)
    try:
        assert pool.idle == 0
        pool.refill()
        assert pool.idle == 2
        small = CgroupLimits(64 * MiB, 10_000, 16)

        group = pool.acquire(small)
        assert pool.idle == 1
        assert _read_back(manager, group) == (64 * MiB, 10_000, 16)
        child = spawn(group, lambda fd: _say(fd, str(len(b"\x01" * (128 * MiB)))))
        assert _killed_by_sigkill(child.wait())
        assert group.oom_kills() >= 1

        pool.release(group)
        assert pool.idle == 2
        again = pool.acquire(ROOMY)
        assert again is group  # reused, with fresh limits and counters
        assert _read_back(manager, again) == (256 * MiB, None, 64)
        assert again.oom_kills() == 0
        assert again.memory_peak_bytes() < 32 * MiB

        others = [pool.acquire(ROOMY) for _ in range(2)]  # the last one is created on demand
        assert pool.idle == 0
        busy = spawn(others[1], _sleep_forever)
        for taken in [again, *others]:
            pool.release(taken)
        assert _killed_by_sigkill(busy.wait())
        assert pool.idle == 2
        assert not others[1].directories[0].exists()  # beyond the pool's size: destroyed
        assert again.directories[0].is_dir()
        assert others[0].directories[0].is_dir()

        for _ in range(2):
            pool.acquire(ROOMY)
        assert pool.idle == 0
        pool.refill()
        assert pool.idle == 2
    finally:
        pool.close()
    assert pool.idle == 0


# --- pure functions ------------------------------------------------------------------------------


def test_cpu_quota_follows_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert cpu_quota_for_memory(1769) == 100_000  # one vCPU
    assert cpu_quota_for_memory(128) == 7236  # 7235.7 rounded up, never below the share
    assert cpu_quota_for_memory(3008) == 170_040
    assert cpu_quota_for_memory(64) == 6250  # at least 1/16 vCPU
    assert cpu_quota_for_memory(10_240) == 578_859
    assert cpu_quota_for_memory(1769, period_us=50_000) == 50_000


def test_cpu_quota_is_capped_at_the_cpus_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert cpu_quota_for_memory(10_240) == 200_000
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert cpu_quota_for_memory(10_240) == 100_000
    assert cpu_quota_for_memory(128) == 7236
    with pytest.raises(ValueError, match="memory_mb"):
        cpu_quota_for_memory(0)


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="memory_bytes"):
        CgroupLimits(0, None, 1)
    with pytest.raises(ValueError, match="cpu_quota_us"):
        CgroupLimits(MiB, 999, 1)
    with pytest.raises(ValueError, match="pids_max"):
        CgroupLimits(MiB, None, 0)


def _mountinfo(*mounts: str) -> str:
    proc = "22 1 0:21 / /proc rw,nosuid - proc proc rw"
    return "\n".join([proc, *mounts]) + "\n"


HYBRID = _mountinfo(
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755",
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct",
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory",
    "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids",
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd",
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate",
)


def test_detect_layout_v1_hybrid() -> None:
    layout = detect_layout(HYBRID)
    assert layout is not None
    assert layout.version == 1
    assert dict(layout.hierarchies) == {
        "memory": Path("/sys/fs/cgroup/memory"),
        "cpu": Path("/sys/fs/cgroup/cpu,cpuacct"),
        "pids": Path("/sys/fs/cgroup/pids"),
    }


def test_detect_layout_v2() -> None:
    unified = "29 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate"
    layout = detect_layout(_mountinfo(unified))
    assert layout is not None
    assert layout.version == 2
    assert set(layout.hierarchies.values()) == {Path("/sys/fs/cgroup")}
    spaced = "29 23 0:26 / /mnt/my\\040cgroups rw - cgroup2 none rw"
    layout = detect_layout(_mountinfo(spaced))
    assert layout is not None
    assert layout.hierarchies["memory"] == Path("/mnt/my cgroups")


def test_detect_layout_without_cgroups() -> None:
    assert detect_layout(_mountinfo()) is None
    assert detect_layout("garbage\n\n") is None
    systemd_only = "40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd"
    assert detect_layout(_mountinfo(systemd_only)) is None


def test_layout_from_root(tmp_path: Path) -> None:
    for controller in ("memory", "cpu", "freezer"):
        (tmp_path / controller).mkdir()
    layout = layout_from_root(tmp_path)
    assert layout.version == 1
    assert dict(layout.hierarchies) == {"memory": tmp_path / "memory", "cpu": tmp_path / "cpu"}
    (tmp_path / "cgroup.controllers").write_text("memory\n")
    assert layout_from_root(tmp_path).version == 2
    with pytest.raises(ValueError, match="version"):
        layout_from_root(tmp_path, 3)


def test_unavailable_without_a_cgroup_filesystem(tmp_path: Path) -> None:
    for version in (None, 1, 2):
        mgr = CgroupManager("lamina-x", root=tmp_path / "missing", version=version)
        assert not mgr.available
        assert mgr.parent_dirs == ()
        with pytest.raises(CgroupUnavailable):
            mgr.create("env-1", ROOMY)
        assert mgr.sweep() == 0
        mgr.close()


def test_unavailable_when_read_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "memory").mkdir()

    def refuse(path: Path) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(cgroups, "_mkdir", refuse)
    mgr = CgroupManager("lamina-x", root=tmp_path)
    assert mgr.version == 1
    assert not mgr.available
    with pytest.raises(CgroupUnavailable):
        mgr.create("env-1", ROOMY)


# --- cgroup v2 against a fake tree ----------------------------------------------------------------


V2_FILES = {
    "cgroup.procs": "",
    "cgroup.controllers": "cpuset cpu io memory pids\n",
    "cgroup.subtree_control": "",
    "cpu.max": "max 100000\n",
    "memory.max": "max\n",
    "memory.current": "4096\n",
    "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    "pids.max": "max\n",
}
V2_OPTIONAL_FILES = {  # absent on older kernels, or (swap.max) without swap accounting
    "memory.swap.max": "max\n",
    "memory.peak": "8192\n",
    "memory.reclaim": "",
    "cgroup.kill": "",
}


class FakeKernel:
    """Plain files standing in for cgroup2fs: mkdir fills in a group's control files."""

    def __init__(self, root: Path, controllers: str = "cpuset cpu io memory pids") -> None:
        self.root = root
        self.optional = set(V2_OPTIONAL_FILES)
        self.files = {**V2_FILES, "cgroup.controllers": controllers + "\n"}
        root.mkdir()
        for name in ("cgroup.procs", "cgroup.controllers", "cgroup.subtree_control"):
            (root / name).write_text(self.files[name])

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)
        optional = {k: v for k, v in V2_OPTIONAL_FILES.items() if k in self.optional}
        for name, text in {**self.files, **optional}.items():
            (path / name).write_text(text)

    def rmdir(self, path: Path) -> None:
        if path.is_dir() and (path / "cgroup.procs").read_text().split():
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        for entry in path.iterdir():  # raises FileNotFoundError like rmdir(2) would
            if entry.is_file():
                entry.unlink()
        os.rmdir(path)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    kernel = FakeKernel(tmp_path / "cgroup")
    monkeypatch.setattr(cgroups, "_mkdir", kernel.mkdir)
    monkeypatch.setattr(cgroups, "_rmdir", kernel.rmdir)
    return kernel


def test_v2_enables_controllers_in_root_and_parent(fake: FakeKernel) -> None:
    mgr = CgroupManager("lamina-t", root=fake.root)
    assert mgr.version == 2
    assert mgr.available
    parent = fake.root / "lamina-t"
    assert mgr.parent_dirs == (parent,)
    assert (fake.root / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    assert (parent / "cgroup.subtree_control").read_text() == "+memory +cpu +pids"
    mgr.close()
    assert not parent.exists()
    assert fake.root.is_dir()


def test_v2_leaves_enabled_root_controllers_alone(fake: FakeKernel) -> None:
    (fake.root / "cgroup.subtree_control").write_text("cpu memory pids\n")
    CgroupManager("lamina-t", root=fake.root, version=2)
    assert (fake.root / "cgroup.subtree_control").read_text() == "cpu memory pids\n"
    (fake.root / "cgroup.subtree_control").write_text("memory\n")
    CgroupManager("lamina-t", root=fake.root, version=2)  # parent exists already: kept
    assert (fake.root / "cgroup.subtree_control").read_text() == "+cpu +pids"


def test_v2_uses_only_offered_controllers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kernel = FakeKernel(tmp_path / "cgroup", controllers="cpu memory")
    monkeypatch.setattr(cgroups, "_mkdir", kernel.mkdir)
    mgr = CgroupManager("lamina-t", root=kernel.root)
    assert (kernel.root / "lamina-t" / "cgroup.subtree_control").read_text() == "+memory +cpu"
    group = mgr.create("env-1", CgroupLimits(64 * MiB, 20_000, 5))
    assert group.controller_dir("pids") is None
    assert (kernel.root / "lamina-t" / "env-1" / "pids.max").read_text() == "max\n"

    no_memory = FakeKernel(tmp_path / "other", controllers="cpu pids")
    assert not CgroupManager("lamina-t", root=no_memory.root).available


def test_v2_writes_limits(fake: FakeKernel) -> None:
    mgr = CgroupManager("lamina-t", root=fake.root)
    group = mgr.create("env-1", CgroupLimits(128 * MiB, 7236, 16))
    env = fake.root / "lamina-t" / "env-1"
    assert group.procs_files == (str(env / "cgroup.procs"),)
    assert group.directories == (env,)
    assert (env / "memory.max").read_text() == str(128 * MiB)
    assert (env / "memory.swap.max").read_text() == "0"
    assert (env / "cpu.max").read_text() == "7236 100000"
    assert (env / "pids.max").read_text() == "16"
    group.set_limits(CgroupLimits(MiB, None, 1))
    assert (env / "cpu.max").read_text() == "max 100000"
    group.set_cpu_quota(50_000)
    assert (env / "cpu.max").read_text() == "50000 100000"
    assert (env / "memory.max").read_text() == str(MiB)


def test_v2_without_swap_accounting(fake: FakeKernel) -> None:
    fake.optional.discard("memory.swap.max")
    group = CgroupManager("lamina-t", root=fake.root).create("env-1", ROOMY)
    assert group.controller_dir("memory") is not None
    assert not (fake.root / "lamina-t" / "env-1" / "memory.swap.max").exists()


def test_v2_counters(fake: FakeKernel) -> None:
    group = CgroupManager("lamina-t", root=fake.root).create("env-1", ROOMY)
    env = fake.root / "lamina-t" / "env-1"
    assert group.memory_current_bytes() == 4096
    assert group.memory_peak_bytes() == 8192
    (env / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 3\noom_kill 2\n")
    assert group.oom_kills() == 2
    group.reset_counters()  # the OOM count starts afresh; memory.peak is reset through a held fd
    assert group.oom_kills() == 0
    assert (env / "memory.peak").read_text() == "reset\n"
    (env / "memory.events").write_text("oom_kill 5\n")
    assert group.oom_kills() == 3
    group.destroy()


def test_v2_peak_falls_back_to_current(fake: FakeKernel) -> None:
    fake.optional.discard("memory.peak")
    group = CgroupManager("lamina-t", root=fake.root).create("env-1", ROOMY)
    group.reset_peak()  # no memory.peak (kernel < 5.19): nothing to reset
    assert group.memory_peak_bytes() == 4096


def test_v2_kill_uses_cgroup_kill(fake: FakeKernel) -> None:
    group = CgroupManager("lamina-t", root=fake.root).create("env-1", ROOMY)
    group.kill_all()
    assert (fake.root / "lamina-t" / "env-1" / "cgroup.kill").read_text() == "1"
    group.reclaim()
    assert (fake.root / "lamina-t" / "env-1" / "memory.reclaim").read_text() == "4096"


def test_v2_destroy_sweep_and_close(fake: FakeKernel) -> None:
    mgr = CgroupManager("lamina-t", root=fake.root)
    group = mgr.create(mgr.new_name(), ROOMY)
    assert group.name == "env-1"
    group.destroy()
    group.destroy()
    assert not (fake.root / "lamina-t" / "env-1").exists()
    for _ in range(3):
        mgr.create(mgr.new_name(), None)
    assert CgroupManager("lamina-t", root=fake.root).sweep() == 3
    assert [p.name for p in (fake.root / "lamina-t").iterdir() if p.is_dir()] == []
    mgr.close()
    assert not (fake.root / "lamina-t").exists()


def test_v2_busy_group_is_not_removed(fake: FakeKernel, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cgroups, "RMDIR_TIMEOUT_S", 0.01)
    monkeypatch.setattr(cgroups, "KILL_TIMEOUT_S", 0.01)
    group = CgroupManager("lamina-t", root=fake.root).create("env-1", ROOMY)
    # A pid beyond pid_max: SIGKILL finds nothing, yet the (fake) group never empties.
    (fake.root / "lamina-t" / "env-1" / "cgroup.procs").write_text("999999999\n")
    with pytest.raises(CgroupError, match="cannot remove cgroup env-1"):
        group.destroy()


def test_v2_pool_discards_broken_and_destroyed_groups(fake: FakeKernel) -> None:
    pool = CgroupPool(CgroupManager("lamina-t", root=fake.root), size=1)
    pool.refill()
    group = pool.acquire(ROOMY)
    pool.release(group)
    assert pool.idle == 1
    (group.directories[0] / "memory.max").unlink()  # limits can no longer be applied
    fresh = pool.acquire(ROOMY)
    assert fresh is not group
    assert not group.exists()
    fresh.destroy()
    pool.release(fresh)  # already destroyed: not kept
    assert pool.idle == 0
    pool.close()
    pool.refill()  # closed: stays empty
    assert pool.idle == 0
