"""Paging of the List* operations: opaque name Markers (URL-safe base64 of the last name of a
page) and offset Markers for short lists read whole."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

from lamina.errors import InvalidParameter


def encode_marker(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def decode_marker(marker: str | None) -> str | None:
    """The name a Marker stands for (None: from the start); a forged one is a clear error."""
    if not marker:
        return None
    try:
        return base64.urlsafe_b64decode(marker.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidParameter(f"Invalid Marker: {marker}") from None


T = TypeVar("T")
PAGE_LIMIT = 50  # AWS's page size for the List* operations that do not document one


def offset_page(
    items: Sequence[T], marker: str | None, max_items: int | None, limit: int = PAGE_LIMIT
) -> tuple[Sequence[T], str | None]:
    """A page of a short, fully read list whose Marker is the offset of its first item: the
    page and the next Marker (None at the end). A Marker that is not an offset starts over."""
    start = int(marker) if marker and marker.isdigit() else 0
    end = start + min(max_items or limit, limit)
    return items[start:end], str(end) if end < len(items) else None
