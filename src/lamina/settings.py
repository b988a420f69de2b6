"""Typed settings, loaded once in the composition root and passed down.

This is the only module that reads the environment. Every field documents its default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEV_ACCESS_KEY = "test"
DEV_SECRET_KEY = "test"


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How `lamina server` listens and whom it trusts."""

    host: str = "127.0.0.1"  # LAMINA_HOST; loopback by default
    port: int = 8910  # LAMINA_PORT
    data_dir: Path = Path("./data")  # LAMINA_DATA_DIR; all state lives here
    account_id: str = "000000000000"  # LAMINA_ACCOUNT_ID; 12 digits, used in every ARN
    default_region: str = "us-east-1"  # LAMINA_REGION; for clients that do not sign a region
    # LAMINA_ACCESS_KEYS="AKID:SECRET,AKID2:SECRET2"; the development pair test/test by default.
    access_keys: Mapping[str, str] = field(default_factory=lambda: {DEV_ACCESS_KEY: DEV_SECRET_KEY})
    # LAMINA_ALLOW_DEV_KEYS=1: accept the well-known test/test pair on a non-loopback address.
    allow_dev_keys_off_loopback: bool = False
    max_clock_skew_seconds: int = 300  # SigV4 requests further off are rejected
    code_url_ttl_seconds: int = 600  # lifetime of GetFunction's Code.Location link (AWS: 10 min)
    code_key_b64: str | None = None  # LAMINA_CODE_KEY; else a key file in the data directory
    # LAMINA_ISOLATION: "auto" uses the strongest isolation the host allows (see
    # sandbox/isolation.py); "strict" refuses to start without namespaces + cgroups as root.
    isolation: str = "auto"
    keepalive_seconds: float = 300.0  # LAMINA_KEEPALIVE: idle environments are reaped after this
    cgroup_pool_size: int = 8  # pre-made cgroups, so a cold start skips mkdir
    # LAMINA_STEM_POOL: environments made ahead of demand per runtime once it is first used, up
    # to the point where they need a function (~3 MiB and ~10 ms of CPU each). A burst beyond
    # it makes the rest on the spot, a few at a time. Unset: sized to the host's memory
    # (worker/stems.py: one per 512 MiB of RAM, 2 to 48).
    stem_pool: int | None = None
    # LAMINA_NETWORK: "egress" (own namespace, NAT out, nothing in, host services unreachable
    # except Lamina's API) or "none" (loopback only).
    network: str = "egress"
    # LAMINA_PYTHON3_11=/path/python3.11 (and 3_12, 3_13): interpreter per runtime.
    interpreters: Mapping[str, str] = field(default_factory=dict)
    # LAMINA_CONCURRENCY_LIMIT: the account's concurrent executions (AWS default 1,000).
    concurrency_limit: int = 1000
    # LAMINA_SCALING_RATE: new environments one function may start per 10 s (AWS: 1,000).
    scaling_rate: int = 1000
    # LAMINA_ASYNC_DELAY_SCALE: multiplies async retry delays (AWS: ~1 min, then ~2 min); tests
    # scale them down without changing the semantics.
    async_delay_scale: float = 1.0

    @property
    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def only_dev_keys(self) -> bool:
        return dict(self.access_keys) == {DEV_ACCESS_KEY: DEV_SECRET_KEY}


def parse_access_keys(text: str) -> dict[str, str]:
    """Parse `AKID:SECRET,AKID2:SECRET2`; raises ValueError on a malformed pair."""
    keys: dict[str, str] = {}
    for pair in filter(None, (part.strip() for part in text.split(","))):
        key_id, sep, secret = pair.partition(":")
        if not sep or not key_id or not secret:
            raise ValueError(f"access key pair {pair!r} is not of the form KEY_ID:SECRET")
        keys[key_id] = secret
    return keys


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


# LAMINA_* variable -> (field, parser)
_ENVIRONMENT: dict[str, tuple[str, Callable[[str], object]]] = {
    "LAMINA_HOST": ("host", str),
    "LAMINA_PORT": ("port", int),
    "LAMINA_DATA_DIR": ("data_dir", Path),
    "LAMINA_ACCOUNT_ID": ("account_id", str),
    "LAMINA_REGION": ("default_region", str),
    "LAMINA_ACCESS_KEYS": ("access_keys", parse_access_keys),
    "LAMINA_ALLOW_DEV_KEYS": ("allow_dev_keys_off_loopback", _flag),
    "LAMINA_CODE_KEY": ("code_key_b64", str),
    "LAMINA_ISOLATION": ("isolation", str),
    "LAMINA_NETWORK": ("network", str),
    "LAMINA_KEEPALIVE": ("keepalive_seconds", float),
    "LAMINA_STEM_POOL": ("stem_pool", int),
    "LAMINA_CONCURRENCY_LIMIT": ("concurrency_limit", int),
    "LAMINA_SCALING_RATE": ("scaling_rate", int),
    "LAMINA_ASYNC_DELAY_SCALE": ("async_delay_scale", float),
}


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> ServerSettings:
    """Settings from the environment (LAMINA_*), then explicit overrides (CLI flags)."""
    env = os.environ if env is None else env
    values = {
        field_name: _parsed(name, env[name], parse)
        for name, (field_name, parse) in _ENVIRONMENT.items()
        if name in env
    }
    interpreters = {
        f"python{key.removeprefix('LAMINA_PYTHON').replace('_', '.')}": value
        for key, value in env.items()
        if key.startswith("LAMINA_PYTHON3_")
    }
    if interpreters:
        values["interpreters"] = interpreters
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = ServerSettings(**values)  # type: ignore[arg-type]
    _check(settings)
    return settings


def _parsed(name: str, text: str, parse: Callable[[str], object]) -> object:
    try:
        return parse(text)
    except ValueError as error:  # name the variable: "invalid literal for int()" alone does not
        raise ValueError(f"{name} is not valid: {error}") from None  # no echo: keys are secret


def _check(settings: ServerSettings) -> None:
    if not (len(settings.account_id) == 12 and settings.account_id.isdigit()):
        raise ValueError(f"account id {settings.account_id!r} must be 12 digits")
    if not settings.access_keys:
        raise ValueError("at least one access key is required")
    if settings.network not in ("egress", "none"):
        raise ValueError(f"network must be 'egress' or 'none', not {settings.network!r}")
    if settings.isolation not in ("auto", "strict"):
        raise ValueError(f"isolation must be 'auto' or 'strict', not {settings.isolation!r}")
    if settings.concurrency_limit < 100:
        raise ValueError("the concurrency limit must be at least 100 (100 stay unreserved)")
    if settings.stem_pool is not None and not 0 <= settings.stem_pool <= 1000:
        raise ValueError("the stem pool must hold 0 to 1000 environments per runtime")
    if settings.scaling_rate < 1 or settings.async_delay_scale <= 0:
        raise ValueError("the scaling rate and the async delay scale must be positive")
