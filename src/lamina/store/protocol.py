"""The Store protocol: durable control-plane state.

The SQLite implementation is the embedded default; a PostgreSQL one will follow, so the
contract avoids anything SQLite-specific. All methods are coroutines; each is atomic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from lamina.model.function import Function, FunctionVersion, State


class Published(NamedTuple):
    """What PublishVersion stores: the new version, and `$LATEST` as publishing leaves it (its
    RevisionId changes with every mutation, publishing included: control-api.md §4.1)."""

    version: FunctionVersion
    latest: FunctionVersion


class Store(Protocol):
    """Functions and their versions, keyed by (region, name)."""

    async def create_function(self, function: Function) -> None:
        """Insert a new function; raises FunctionExists if the name is taken in its region."""
        ...

    async def get_function(self, region: str, name: str) -> Function | None:
        """The function, or None."""
        ...

    async def list_functions(self, region: str, after: str | None, limit: int) -> list[Function]:
        """Up to `limit` functions of a region ordered by name, strictly after `after`."""
        ...

    async def update_function(
        self, region: str, name: str, change: Callable[[Function], Function]
    ) -> Function:
        """Atomically read, transform and write one function; `change` may raise to abort.

        Raises FunctionNotFound (with the unqualified ARN left to the caller) if absent.
        """
        ...

    async def delete_function(self, region: str, name: str) -> Function | None:
        """Remove a function and all its versions; returns what was removed, or None."""
        ...

    async def publish_version(
        self,
        region: str,
        name: str,
        make: Callable[[Function, FunctionVersion | None, int], Published | None],
    ) -> FunctionVersion:
        """Atomically snapshot a function as its next version number.

        `make(function, previous, number)` builds the version from the function and the last
        published version (None if there is none), with `$LATEST` as publishing leaves it; or
        returns None when nothing changed since `previous`, which is then returned instead.
        Raises FunctionNotFound if absent.
        """
        ...

    async def get_version(self, region: str, name: str, version: str) -> FunctionVersion | None:
        """A published version (or `$LATEST`), or None."""
        ...

    async def list_versions(self, region: str, name: str) -> list[FunctionVersion]:
        """`$LATEST` then published versions in ascending number."""
        ...

    async def delete_version(self, region: str, name: str, version: str) -> FunctionVersion | None:
        """Remove one published version; returns it, or None if absent."""
        ...

    async def functions_in_state(self, state: State) -> list[Function]:
        """Every function, in any region, whose `$LATEST` is in `state` (startup recovery)."""
        ...

    async def usage(self, region: str) -> tuple[int, int]:
        """(function count, total zipped code bytes) of a region."""
        ...

    async def code_in_use(self, sha256_hex: str) -> bool:
        """Whether any version of any function references this code."""
        ...

    async def close(self) -> None:
        """Release the connection; idempotent."""
        ...
