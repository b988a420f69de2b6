"""Creates environments: takes a stem for the runtime, sets the function's cgroup limits,
sends the specialization, and waits for init. Builds the sandbox specs for the host's
isolation level (see sandbox/isolation.py)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from lamina.errors import SandboxStartError
from lamina.runtimes.catalog import (
    NODE_RUNTIME_SOURCE,
    NODE_RUNTIMES,
    RUNTIME_DIR,
    bootstrap_argv,
    find_node,
    python_runtime,
    uses_bootstrap,
    zygote_runtime,
)
from lamina.sandbox.cgroups import (
    Cgroup,
    CgroupError,
    CgroupLimits,
    CgroupPool,
    cpu_quota_for_memory,
)
from lamina.sandbox.isolation import Isolation
from lamina.sandbox.network import EgressNetwork, Lease
from lamina.sandbox.spec import (
    STRICT_NAMESPACES,
    Bind,
    BootstrapEntry,
    PythonEntry,
    RootFs,
    Specialization,
    StemSpec,
)
from lamina.sandbox.zygote import Zygote
from lamina.worker.environment import Environment, encode_frame
from lamina.worker.invocation import InvokeRequest, Target
from lamina.worker.logs import EnvironmentLog, LogSink, LogStyle
from lamina.worker.pipes import PipeWatcher
from lamina.worker.stems import STEM_LIMITS, Stem, StemPool
from lamina_inside import channel

log = logging.getLogger(__name__)

# Stems made on demand at once, across runtimes: enough to keep the CPUs busy while one waits
# on the zygote or the kernel (more only shares the CPUs among more unfinished stems).
MAKING_SLOTS = 2 * (os.cpu_count() or 1)
SANDBOX_UID = 65534  # nobody: owns nothing on the host
PIDS_MAX = 1024  # AWS: 1,024 processes/threads per environment
NOFILE = 1024  # AWS: 1,024 file descriptors
UNPRIVILEGED_NPROC = 4096
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc")
LANG_DIR = "/var/lang"
TASK_DIR = "/var/task"


@dataclass(frozen=True, slots=True)
class LauncherConfig:
    isolation: Isolation
    root_mountpoint: Path  # empty directory the sandbox root is mounted over
    code_root: Path  # the extracted-code cache (control/code.py)
    interpreters: Mapping[str, str]  # runtime -> interpreter overrides
    stems_per_runtime: int = 2
    network: EgressNetwork | None = None  # None: loopback only
    extra_env: Mapping[str, str] = field(default_factory=dict)  # e.g. AWS_ENDPOINT_URL


class Launcher:
    """Owns the zygotes (one per interpreter) and their stem pools."""

    def __init__(self, config: LauncherConfig, cgroups: CgroupPool | None, sink: LogSink) -> None:
        self._config = config
        self._cgroups = cgroups
        self._sink = sink
        self._pools: dict[str, StemPool] = {}
        self._zygotes: list[Zygote] = []
        self._starting: dict[str, asyncio.Task[StemPool]] = {}
        self._node = find_node(config.interpreters)  # Node.js for nodejs20.x, found once
        self._making = asyncio.Semaphore(MAKING_SLOTS)
        self._pipes = PipeWatcher()  # every environment's log pipe

    async def launch(
        self, target: Target, wanted: Callable[[], bool], first: InvokeRequest | None = None
    ) -> Environment:
        """An environment for `target`; check `init_error` on the result. `wanted` is asked
        before a stem is made on demand (LaunchNotNeeded if it says no). With `first`, our
        Python runtime gets that invocation with its specialization (Environment.send_first)
        and the environment comes back running it; others ignore it."""
        if target.runtime in NODE_RUNTIMES and self._node is None:
            raise SandboxStartError(f"no Node.js is installed for {target.runtime}")
        pool = await self._pool_for(zygote_runtime(target.runtime))
        stem = await pool.take(wanted)
        cgroup = stem.cgroup
        memory = target.memory_mb * 1024 * 1024
        # Init runs with the CPU unthrottled (as AWS boosts it); the function's share applies
        # from the first invocation on. Stems start at 128 MB: most functions need no write.
        init_limits = CgroupLimits(memory, cpu_quota_us=None, pids_max=PIDS_MAX)
        if cgroup is not None and init_limits != STEM_LIMITS:
            cgroup.set_limits(init_limits)
        stream = _stream_name(target.version)
        reader, writer = stem.reader, stem.writer
        # Only our Python runtime reads an invocation sent ahead (the bridge waits for READY).
        ahead = None if uses_bootstrap(target.runtime) or target.extensions else first
        boundary = "" if ahead is None else f"\x00lamina-init-{secrets.token_hex(8)}\x00"
        specialization = self._specialization(target, stream, boundary)
        writer.write(encode_frame(channel.SPECIALIZE, specialization.to_wire()))
        environment = Environment(
            stem.env_id,
            target,
            stem.zygote,
            stem.pid,
            stem.cgroup,
            reader,
            writer,
            EnvironmentLog(
                stem.log_fd,
                self._pipes,
                self._sink,
                target.log_group,
                stream,
                LogStyle.of(target.log_format, target.system_log_level),
                target.region,
            ),
            self._releaser(stem.lease),
        )
        if ahead is not None:
            environment.send_first(ahead, boundary.encode())
        await environment.wait_ready()
        if cgroup is not None and environment.init_error is None:
            quota = cpu_quota_for_memory(target.memory_mb)
            asyncio.get_running_loop().call_soon(_apply_quietly, cgroup, quota)
        return environment

    def _releaser(self, lease: Lease | None) -> Callable[[Environment], None]:
        def release(environment: Environment) -> None:
            if environment.cgroup is not None and self._cgroups is not None:
                self._cgroups.release(environment.cgroup)
            if lease is not None and self._config.network is not None:
                self._config.network.release(lease)

        return release

    def _stem_spec(
        self,
        zygote: Zygote,
        root: RootFs | None,
        env_id: str,
        procs: tuple[str, ...],
        rehearse: bool,
    ) -> StemSpec:
        isolation = self._config.isolation
        if root is None:  # rlimits: no namespaces, no root
            return StemSpec(env_id=env_id, rehearse=rehearse)
        namespaces: tuple[str, ...] = STRICT_NAMESPACES
        if isolation is Isolation.USERNS:
            namespaces = ("user", *STRICT_NAMESPACES)
        return StemSpec(
            env_id=env_id,
            procs_files=procs,
            namespaces=namespaces,
            root=root,
            init_uid=SANDBOX_UID if isolation is Isolation.STRICT else None,
            init_seccomp=True,
            python_prefix=(zygote.prefix, LANG_DIR),
            rehearse=rehearse,
        )

    def _root(self, zygote: Zygote) -> RootFs | None:
        """The sandbox root of `zygote`'s environments: the same for each, so made once."""
        if self._config.isolation is Isolation.RLIMITS:
            return None
        return RootFs(
            mountpoint=str(self._config.root_mountpoint),
            binds=(*_system_binds(), Bind(zygote.prefix, LANG_DIR), *_runtime_binds(self._node)),
            code_root=str(self._config.code_root),
            links=_system_links(),
        )

    def _specialization(self, target: Target, stream: str, boundary: str) -> Specialization:
        isolation = self._config.isolation
        env = {
            **target.environment,
            **self._config.extra_env,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
        }
        rlimits: dict[str, tuple[int, int]] = {"NOFILE": (NOFILE, NOFILE), "CORE": (0, 0)}
        if isolation is not Isolation.STRICT:
            # Without cgroups, address space is the only memory cap the kernel offers, and
            # the per-user process count the only brake on a fork bomb (it counts all of this
            # user's processes, the server's included).
            memory = max(target.memory_mb, 256) * 1024 * 1024
            rlimits["AS"] = (memory, memory)
            rlimits["NPROC"] = (UNPRIVILEGED_NPROC, UNPRIVILEGED_NPROC)
        if isolation is Isolation.RLIMITS:
            return Specialization(
                code_dir=target.code_dir,
                tmp_size_mb=target.ephemeral_mb,
                entry=_entry(target, target.code_dir, NODE_RUNTIME_SOURCE, self._node),
                env={**env, **_host_paths(target.runtime, env, target.code_dir)},
                cwd=target.code_dir,
                rlimits=rlimits,
                # No mount namespace, so no /opt: Python finds layers' packages in the host
                # trees instead (Node's NODE_PATH and binaries under /opt do not).
                opt_roots=tuple(reversed(target.layer_dirs)),
                init_boundary=boundary,
            )
        strict = isolation is Isolation.STRICT
        return Specialization(
            code_dir=target.code_dir,
            tmp_size_mb=target.ephemeral_mb,
            entry=_entry(target, TASK_DIR, RUNTIME_DIR, self._node),
            env=env,
            cwd=TASK_DIR,
            uid=SANDBOX_UID if strict else None,
            gid=SANDBOX_UID if strict else None,
            rlimits=rlimits,
            seccomp=True,
            layer_dirs=target.layer_dirs,
            init_boundary=boundary,
        )

    async def _pool_for(self, runtime: str) -> StemPool:
        pool = self._pools.get(runtime)
        if pool is not None:
            return pool
        task = self._starting.get(runtime)
        if task is None:
            task = self._starting[runtime] = asyncio.ensure_future(self._start_pool(runtime))
        try:
            pool = await asyncio.shield(task)
        finally:
            if task.done():
                self._starting.pop(runtime, None)
        self._pools[runtime] = pool
        return pool

    async def _start_pool(self, runtime: str) -> StemPool:
        found = python_runtime(runtime, self._config.interpreters)
        if found is None:
            raise SandboxStartError(f"no interpreter is installed for {runtime}")
        zygote = await Zygote.start(found.interpreter)
        self._zygotes.append(zygote)

        root = self._root(zygote)

        def stem_spec(env_id: str, procs: tuple[str, ...], rehearse: bool) -> StemSpec:
            return self._stem_spec(zygote, root, env_id, procs, rehearse)

        return StemPool(
            zygote,
            stem_spec,
            self._cgroups,
            self._config.stems_per_runtime,
            self._making,
            self._config.network,
        )

    async def prewarm(self, runtimes: tuple[str, ...]) -> None:
        """Start zygotes and fill stem pools ahead of the first invocation."""
        for runtime in runtimes:
            (await self._pool_for(runtime)).fill()

    async def close(self) -> None:
        for pool in self._pools.values():
            await pool.close()
        self._pools.clear()
        for zygote in self._zygotes:
            await zygote.close()
        self._zygotes.clear()
        self._pipes.close()


def _apply_quietly(cgroup: Cgroup, quota_us: int) -> None:
    try:
        cgroup.set_cpu_quota(quota_us)
    except CgroupError:
        log.warning("cannot apply the CPU share to %s; it is being destroyed", cgroup.name)


def _system_binds() -> tuple[Bind, ...]:
    return tuple(
        Bind(path, path) for path in SYSTEM_DIRS if os.path.isdir(path) and not os.path.islink(path)
    )


def _runtime_binds(node: str | None) -> tuple[Bind, ...]:
    """/var/runtime (our Node.js runtime script), and Node.js itself when it lives outside the
    system directories every sandbox already sees (nvm, /opt/node, ...)."""
    binds = [Bind(NODE_RUNTIME_SOURCE, RUNTIME_DIR)]
    if node is not None and not node.startswith(tuple(d + "/" for d in SYSTEM_DIRS)):
        prefix = os.path.dirname(os.path.dirname(node))  # .../bin/node -> its installation
        binds.append(Bind(prefix, prefix))
    return tuple(binds)


def _host_paths(runtime: str, env: Mapping[str, str], code_dir: str) -> dict[str, str]:
    """Without a sandbox root (rlimits), the sandbox paths in the environment are host paths."""
    paths = {"LAMBDA_TASK_ROOT": code_dir}
    if runtime in NODE_RUNTIMES:
        paths["LAMBDA_RUNTIME_DIR"] = NODE_RUNTIME_SOURCE
    if runtime in NODE_RUNTIMES and "NODE_PATH" in env:
        paths["NODE_PATH"] = ":".join(
            code_dir if part == TASK_DIR else NODE_RUNTIME_SOURCE if part == RUNTIME_DIR else part
            for part in env["NODE_PATH"].split(":")
        )
    return paths


def _system_links() -> tuple[tuple[str, str], ...]:
    # Merged-/usr systems make /bin, /lib, ... symlinks; recreate them inside.
    return tuple((path, os.readlink(path)) for path in SYSTEM_DIRS if os.path.islink(path))


def _stream_name(version: str) -> str:
    """AWS's stream name: YYYY/MM/DD/[version]<32 hex>."""
    return time.strftime("%Y/%m/%d/", time.gmtime()) + f"[{version}]{secrets.token_hex(16)}"


__all__ = ["Launcher", "LauncherConfig", "Stem"]


def _entry(
    target: Target, task_root: str, runtime_dir: str, node: str | None
) -> PythonEntry | BootstrapEntry:
    """What the environment runs: our Python runtime, or, behind the Runtime API, the function's
    `bootstrap` (custom runtimes) or Node.js with our runtime script (nodejs20.x)."""
    if uses_bootstrap(target.runtime):
        return BootstrapEntry(bootstrap_argv(target.runtime, task_root, runtime_dir, node))
    return PythonEntry(target.handler, task_root, bridged=target.extensions)
