"""Expiring, signed download links for deployment packages (GetFunction's Code.Location) and
layer archives (GetLayerVersion's Content.Location)."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote

from lamina.clock import Clock
from lamina.errors import CodeNotFound

PATH_PREFIX = "/_lamina/code/"
LAYER_PATH_PREFIX = "/_lamina/code/layers/"  # four parts: layers/region/name/digest.zip


class CodeLinks:
    """Signs (region, name, digest, expiry) with a server secret; like a presigned S3 URL."""

    def __init__(self, secret: bytes, ttl_seconds: int, clock: Clock) -> None:
        self._secret = secret
        self._ttl = ttl_seconds
        self._clock = clock

    def url(
        self, base_url: str, region: str, name: str, digest: str, *, layer: bool = False
    ) -> str:
        """A link to a function's code, or with `layer` to a layer's archive."""
        expires = int(self._clock.time()) + self._ttl
        prefix = LAYER_PATH_PREFIX if layer else PATH_PREFIX
        signature = self._sign(region, name, digest, expires, layer)
        path = f"{prefix}{quote(region)}/{quote(name)}/{digest}.zip"
        return f"{base_url}{path}?Expires={expires}&Signature={signature}"

    @staticmethod
    def is_layer_link(path: str) -> bool:
        return path.startswith(LAYER_PATH_PREFIX)

    def verify(self, path: str, expires: str, signature: str) -> tuple[str, str, str]:
        """Returns (region, name, digest); raises CodeNotFound for a bad or stale link."""
        layer = self.is_layer_link(path)
        parts = path.removeprefix(LAYER_PATH_PREFIX if layer else PATH_PREFIX).split("/")
        if len(parts) != 3 or not parts[2].endswith(".zip") or not expires.isdigit():
            raise CodeNotFound("The code link is malformed.")
        region, name, digest = parts[0], parts[1], parts[2].removesuffix(".zip")
        expected = self._sign(region, name, digest, int(expires), layer)
        if not hmac.compare_digest(expected, signature):
            raise CodeNotFound("The code link signature does not match.")
        if int(expires) < self._clock.time():
            raise CodeNotFound("The code link has expired.")
        return region, name, digest

    def _sign(self, region: str, name: str, digest: str, expires: int, layer: bool) -> str:
        # A layer link signs its kind too: it can never pass for a function's link.
        kind = "layer\n" if layer else ""
        message = f"{kind}{region}\n{name}\n{digest}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
