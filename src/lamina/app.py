"""Composition root: settings -> store -> code -> control -> API. Nothing else wires objects."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from lamina.api.app import LambdaApi
from lamina.api.codelinks import CodeLinks
from lamina.api.context import Services
from lamina.api.observability import ObservabilityApi
from lamina.api.sigv4 import SigV4Verifier
from lamina.clock import Clock, SystemClock
from lamina.control.activation import Activator
from lamina.control.aliases import AliasService
from lamina.control.code import CodeRepository
from lamina.control.concurrency import ConcurrencyService
from lamina.control.destinations import Deliveries
from lamina.control.event_config import EventConfigService
from lamina.control.events import EventQueue
from lamina.control.functions import FunctionService
from lamina.control.invoke import InvokeService
from lamina.control.layers import LayerService
from lamina.control.logs import LogService
from lamina.control.provisioned import ProvisionedService
from lamina.control.queues import QueueService
from lamina.errors import StartupRefused
from lamina.observability.audit import AuditLog
from lamina.observability.logstore import FileLogSink
from lamina.observability.metrics import EnvironmentCounts, Metrics, QueueCounts
from lamina.sandbox import leftovers
from lamina.sandbox.cgroups import CgroupManager, CgroupPool
from lamina.sandbox.isolation import Isolation, detect
from lamina.sandbox.network import EgressNetwork
from lamina.scheduler.pool import Scheduler
from lamina.settings import DEV_ACCESS_KEY, DEV_SECRET_KEY, ServerSettings
from lamina.store.aliases import AliasStore
from lamina.store.archive import ArchiveLimits
from lamina.store.blobs import CodeBlobStore, load_or_create_key
from lamina.store.codecache import CodeCache
from lamina.store.function_settings import FunctionSettings
from lamina.store.group_commit import GroupCommit
from lamina.store.layers import LayerStore
from lamina.store.sqlite import SqliteStore
from lamina.worker.launcher import Launcher, LauncherConfig
from lamina.worker.stems import default_pool_size

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Lamina:
    """A running server: the ASGI app and the owners behind it."""

    api: LambdaApi
    functions: FunctionService
    activator: Activator
    isolation: Isolation
    gateway: str | None  # the bridge address environments reach the API on (egress mode)


def accepted_keys(settings: ServerSettings) -> dict[str, str]:
    """The access keys requests may be signed with: the configured ones, except that beyond
    loopback the well-known development pair is dropped when real keys sit beside it (unless
    --allow-dev-keys): anyone who read the README knows test/test."""
    keys = dict(settings.access_keys)
    exposed = not (settings.is_loopback or settings.allow_dev_keys_off_loopback)
    if exposed and len(keys) > 1 and keys.get(DEV_ACCESS_KEY) == DEV_SECRET_KEY:
        del keys[DEV_ACCESS_KEY]
    return keys


def check_exposure(settings: ServerSettings) -> None:
    """Refuse to serve the well-known development keys beyond loopback unless told to."""
    if settings.is_loopback or settings.allow_dev_keys_off_loopback:
        return
    if DEV_ACCESS_KEY not in accepted_keys(settings) and DEV_ACCESS_KEY in settings.access_keys:
        log.warning("not accepting the development keys test/test on %s", settings.host)
    if settings.only_dev_keys:
        raise StartupRefused(
            f"Refusing to listen on {settings.host} with only the development credentials "
            "test/test: configure real keys (LAMINA_ACCESS_KEYS=ID:SECRET) or pass "
            "--allow-dev-keys to accept them anyway."
        )


def _code_key(settings: ServerSettings, data_dir: Path) -> bytes:
    if settings.code_key_b64:
        key = base64.b64decode(settings.code_key_b64)
        if len(key) != 32:
            raise StartupRefused("LAMINA_CODE_KEY must be 32 bytes, base64-encoded.")
        return key
    return load_or_create_key(data_dir / "keys" / "code.key")


def _clear_instance(instance: str) -> None:
    CgroupManager(f"lamina-{instance}").close()
    if EgressNetwork.available():
        EgressNetwork.clear(instance)


def _egress_network(
    settings: ServerSettings, isolation: Isolation, instance: str, api_port: int
) -> EgressNetwork | None:
    if settings.network != "egress":
        return None
    if isolation is not Isolation.STRICT or not EgressNetwork.available():
        log.warning(
            "egress networking needs root and nftables; functions get loopback only "
            "(network mode 'none')"
        )
        return None
    network = EgressNetwork(instance, api_port)
    network.open()
    return network


def _function_env(
    settings: ServerSettings, network: EgressNetwork | None, port: int
) -> dict[str, str]:
    """How a function's SDK reaches Lamina's own API (functions calling functions)."""
    if network is None:
        return {}
    env = {"AWS_ENDPOINT_URL": f"http://{network.gateway}:{port}"}
    if settings.only_dev_keys:  # development: the well-known keys; never real ones
        env |= {"AWS_ACCESS_KEY_ID": DEV_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": DEV_SECRET_KEY}
    return env


@asynccontextmanager
async def open_engine(
    settings: ServerSettings, data_dir: Path, api_port: int, sink: FileLogSink
) -> AsyncIterator[tuple[Scheduler, Isolation, EgressNetwork | None]]:
    """The execution engine: cgroups, zygotes, warm pools, the egress network, function logs."""
    instance = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    if os.geteuid() == 0:
        leftovers.sweep(_clear_instance)
        leftovers.register(instance)
    cgroups = CgroupManager(f"lamina-{instance}")
    isolation = detect(cgroups.available, tuple(settings.interpreters.values()))
    if settings.isolation == "strict" and isolation is not Isolation.STRICT:
        raise StartupRefused(
            "Strict isolation was demanded (LAMINA_ISOLATION=strict) but this host only allows "
            f"'{isolation.value}': run the server as root on a host with cgroups."
        )
    if isolation is Isolation.RLIMITS:
        log.warning(
            "INSECURE: neither root nor user namespaces are available; functions run with "
            "rlimits only and can read what this server's user can read"
        )
    pool = CgroupPool(cgroups, settings.cgroup_pool_size) if cgroups.available else None
    if pool is not None:
        cgroups.sweep()  # what a crashed run left behind
        pool.refill()
    mountpoint = data_dir / "sandbox-root"
    mountpoint.mkdir(exist_ok=True)
    sink.start()
    network = _egress_network(settings, isolation, instance, api_port)
    config = LauncherConfig(
        isolation,
        mountpoint,
        data_dir / "code",
        settings.interpreters,
        network=network,
        extra_env=_function_env(settings, network, api_port),
        stems_per_runtime=(
            settings.stem_pool if settings.stem_pool is not None else default_pool_size()
        ),
    )
    launcher = Launcher(config, pool, sink)
    scheduler = Scheduler(launcher.launch, settings.keepalive_seconds)
    scheduler.start()
    try:
        yield scheduler, isolation, network
    finally:
        await scheduler.close()
        await launcher.close()
        if pool is not None:
            pool.close()
        if network is not None:
            network.close()
        cgroups.close()
        await sink.close()
        leftovers.unregister(instance)


@asynccontextmanager
async def open_lamina(
    settings: ServerSettings, clock: Clock | None = None, api_port: int | None = None
) -> AsyncIterator[Lamina]:
    """Build everything, recover what a crash left behind, and tear it all down on exit."""
    check_exposure(settings)
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)  # functions and other users must never read state or code
    audit = AuditLog(data_dir / "audit")  # every control-plane call, from the first one on
    audit.open()
    try:
        async with _open_services(
            settings, clock or SystemClock(), api_port, data_dir, audit
        ) as lamina:
            yield lamina
    finally:
        audit.close()


def _watch(metrics: Metrics, scheduler: Scheduler, events: EventQueue) -> None:
    """Invocations reach the metrics from the scheduler; gauges read live state at scrape."""
    scheduler.observe_invocations(metrics.invoked)
    metrics.read_live_state(
        lambda: {k: EnvironmentCounts(*v) for k, v in scheduler.environments().items()},
        lambda: {k: QueueCounts(*v) for k, v in events.depths().items()},
    )


@asynccontextmanager
async def _open_services(
    settings: ServerSettings, clock: Clock, api_port: int | None, data_dir: Path, audit: AuditLog
) -> AsyncIterator[Lamina]:
    key = _code_key(settings, data_dir)
    store = SqliteStore(data_dir / "state.db")
    function_settings = FunctionSettings(store.database)
    aliases = AliasStore(store.database)
    limits = ArchiveLimits()
    code = CodeRepository(
        CodeBlobStore(data_dir / "blobs", key), CodeCache(data_dir / "code", limits), limits
    )
    activator = Activator(store, code, clock)
    layers = LayerService(
        LayerStore(store.database), code, clock, settings.account_id, store.code_in_use
    )
    link_secret = hmac.new(key, b"lamina code links", hashlib.sha256).digest()
    verifier = SigV4Verifier(accepted_keys(settings), settings.max_clock_skew_seconds)
    metrics = Metrics(clock.time)
    try:
        port = settings.port if api_port is None else api_port
        sink = FileLogSink(data_dir / "logs", default_region=settings.default_region)
        async with open_engine(settings, data_dir, port, sink) as (scheduler, isolation, network):

            def changed(region: str, name: str) -> None:
                scheduler.retire_function(region, name)
                provisioned.function_changed(region, name)

            async def version_gone(region: str, name: str, version: str) -> None:
                await provisioned.qualifier_gone(region, name, version)  # every setting of it

            async def function_gone(region: str, name: str) -> None:
                await events.function_deleted(region, name)

            functions = FunctionService(
                store,
                code,
                activator,
                clock,
                settings.account_id,
                changed,
                aliases=aliases,
                on_version_gone=version_gone,
                layers=layers,
                on_function_gone=function_gone,
            )
            concurrency = ConcurrencyService(
                functions, function_settings, settings.concurrency_limit, settings.scaling_rate
            )
            scheduler.gate_launches(lambda t: concurrency.take_launch(t.region, t.function_name))
            invoker = InvokeService(
                functions, code, scheduler, concurrency, metrics.throttled, layers=layers
            )
            provisioned = ProvisionedService(
                functions, function_settings, aliases, concurrency, invoker, scheduler, clock
            )
            commits = GroupCommit(store.database.path)
            commits.start()
            queues = QueueService(store.database, commits, clock, settings.account_id)
            event_configs = EventConfigService(function_settings, functions, queues, clock)
            events = EventQueue(
                store.database,
                commits,
                invoker,
                functions,
                event_configs,
                Deliveries(queues, settings.account_id),
                clock,
                settings.account_id,
                settings.async_delay_scale,
                max_total=settings.concurrency_limit,  # more would only be throttled
                on_outcomes=metrics.async_outcomes,
                reserved=concurrency.reserved,
            )
            _watch(metrics, scheduler, events)
            services = Services(
                functions,
                invoker,
                CodeLinks(link_secret, settings.code_url_ttl_seconds, clock),
                settings.account_id,
                events,
                event_configs,
                queues,
                aliases=AliasService(
                    functions,
                    aliases,
                    provisioned.qualifier_gone,
                    provisioned.function_changed,
                    provisioned.check_alias_target,
                ),
                concurrency=concurrency,
                provisioned=provisioned,
                logs=LogService(sink, settings.account_id),
                layers=layers,
            )
            await code.collect_garbage(store.code_in_use)
            await activator.resume()
            await concurrency.load()
            await provisioned.start()
            events.start()
            try:
                yield Lamina(
                    LambdaApi(
                        services,
                        verifier,
                        clock,
                        ObservabilityApi(metrics, audit, settings.account_id, clock.time),
                    ),
                    functions,
                    activator,
                    isolation,
                    network.gateway if network is not None else None,
                )
            finally:
                await events.close()  # before the engine: unfinished events stay stored
                await commits.close()
                await provisioned.close()
    finally:
        await activator.close()
        await store.close()
