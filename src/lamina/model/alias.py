"""An alias: a named pointer to a version of a function, optionally splitting traffic."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lamina.model.function import LATEST


@dataclass(frozen=True, slots=True)
class Alias:
    """`version` is the primary version (a number or `$LATEST`); `weights` maps additional
    versions to the share of invocations they receive (AWS allows at most one)."""

    region: str
    function: str
    name: str
    version: str
    revision_id: str
    description: str = ""
    weights: Mapping[str, float] = field(default_factory=dict)

    def pick(self, draw: float) -> str:
        """The version an invocation runs, given a uniform draw in [0, 1)."""
        for version, weight in self.weights.items():
            if draw < weight:
                return version
            draw -= weight
        return self.version

    def references(self, version: str) -> bool:
        """Whether invocations through this alias may run `version`."""
        return version == self.version or version in self.weights


def is_alias_name(qualifier: str | None) -> bool:
    """A qualifier names an alias unless it is absent, `$LATEST` or a version number."""
    return qualifier is not None and qualifier != LATEST and not qualifier.isdigit()
