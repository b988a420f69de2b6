"""What a killed server leaves behind, and how the next one clears it.

A server that is SIGKILLed cannot remove its cgroups, bridge and nftables table. Each server
registers its instance in `/run/lamina/<instance>` with its pid; at start a server clears the
host resources of every registered instance whose process is gone.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

REGISTRY = Path("/run/lamina")


def register(instance: str, registry: Path = REGISTRY) -> None:
    with contextlib.suppress(OSError):
        registry.mkdir(parents=True, exist_ok=True)
        (registry / instance).write_text(str(os.getpid()))


def unregister(instance: str, registry: Path = REGISTRY) -> None:
    with contextlib.suppress(OSError):
        (registry / instance).unlink()


def sweep(clear: Callable[[str], None], registry: Path = REGISTRY) -> list[str]:
    """Call `clear(instance)` for every registered instance whose server is dead."""
    cleared: list[str] = []
    if not registry.is_dir():
        return cleared
    for entry in registry.iterdir():
        if _alive(entry):
            continue
        try:
            clear(entry.name)
        except Exception:
            log.exception("cannot clear what instance %s left behind", entry.name)
            continue
        entry.unlink(missing_ok=True)
        cleared.append(entry.name)
    if cleared:
        log.info("cleared cgroups and networks of %d dead server(s)", len(cleared))
    return cleared


def _alive(entry: Path) -> bool:
    try:
        pid = int(entry.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True
