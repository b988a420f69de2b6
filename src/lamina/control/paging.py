"""Opaque Marker tokens of the List* operations: the last name of a page, URL-safe base64."""

from __future__ import annotations

import base64
import binascii

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
