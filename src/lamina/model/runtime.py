"""Runtimes Lamina can run (the execution engine maps each to an interpreter or a bootstrap)."""

from __future__ import annotations

SUPPORTED_RUNTIMES: tuple[str, ...] = (
    "python3.11",
    "python3.12",
    "python3.13",
    "nodejs20.x",
    "provided.al2023",
    "provided.al2",
    "provided",
)
