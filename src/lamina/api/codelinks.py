"""Expiring, signed download links for deployment packages (GetFunction's Code.Location)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from lamina.clock import Clock
from lamina.errors import CodeNotFound

PATH_PREFIX = "/_lamina/code/"


class CodeLinks:
    """Signs (region, name, digest, expiry) with a server secret; like a presigned S3 URL."""

    def __init__(self, secret: bytes, ttl_seconds: int, clock: Clock) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._clock = clock

    def url(self, base_url: str, region: str, name: str, digest: str) -> str:
        expires = int(self._clock.time()) + self._ttl
        signature = self._sign(region, name, digest, expires)
        path = f"{PATH_PREFIX}{quote(region)}/{quote(name)}/{digest}.zip"
        return f"{base_url}{path}?Expires={expires}&Signature={signature}"

    def verify(self, path: str, expires: str, signature: str) -> tuple[str, str, str]:
        """Returns (region, name, digest); raises CodeNotFound for a bad or stale link."""
        parts = path.removeprefix(PATH_PREFIX).split("/")
        if len(parts) != 3 or not parts[2].endswith(".zip") or not expires.isdigit():
            raise CodeNotFound("The code link is malformed.")
        region, name, digest = parts[0], parts[1], parts[2].removesuffix(".zip")
        expected = self._sign(region, name, digest, int(expires))
        if not hmac.compare_digest(expected, signature):
            raise CodeNotFound("The code link signature does not match.")
        if int(expires) < self._clock.time():
            raise CodeNotFound("The code link has expired.")
        return region, name, digest

    def _sign(self, region: str, name: str, digest: str, expires: int) -> str:
        message = f"{region}\n{name}\n{digest}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
