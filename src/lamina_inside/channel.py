"""The private runtime channel: length-prefixed frames over a stream socket.

Frame = 4-byte big-endian body length, 1-byte kind, body. Bodies of INVOKE, RESULT and ERROR
carry a JSON header and raw payload bytes: 4-byte header length, header JSON, payload.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Callable
from typing import Any

# server -> environment
INVOKE = 1
SPECIALIZE = 6  # to a waiting environment: header = the function-specific sandbox spec
PREPARE = 7  # to a waiting environment, ahead of SPECIALIZE: header = its network address
SHUTDOWN = 8  # to a Runtime API bridge retiring its environment: extensions get SHUTDOWN
# runtime -> server
READY = 2  # init finished; header: {"init_ms": float}
INIT_ERROR = 3  # header: the AWS error document
RESULT = 4  # header: {"content_type": str}; payload: the response bytes
ERROR = 5  # header: the AWS error document (+ "error_type" for the runtime's category)
STANDBY = 9  # a stem is ready and waits for its specialization; header: {}

_FRAME = struct.Struct("!IB")
_HEADER = struct.Struct("!I")
MAX_BODY = 64 * 1024 * 1024  # far above the 6 MB payload limit; a guard against garbage


class ChannelClosed(Exception):
    """The peer closed the channel (the environment died or the server hung up)."""


def encode(kind: int, header: dict[str, Any], payload: bytes = b"") -> bytes:
    return frame(kind, json.dumps(header, separators=(",", ":")).encode(), payload)


def frame(kind: int, head: bytes, payload: bytes = b"") -> bytes:
    """A frame whose header is JSON already encoded (the server encodes it with orjson)."""
    prefix = _FRAME.pack(_HEADER.size + len(head) + len(payload), kind)
    return b"".join((prefix, _HEADER.pack(len(head)), head, payload))


def decode_body(
    body: bytes, loads: Callable[[bytes], Any] = json.loads
) -> tuple[dict[str, Any], bytes]:
    (size,) = _HEADER.unpack_from(body)
    header = loads(body[_HEADER.size : _HEADER.size + size])
    return header, body[_HEADER.size + size :]


def parse_prefix(prefix: bytes) -> tuple[int, int]:
    """(body length, kind) from the 5-byte frame prefix."""
    size, kind = _FRAME.unpack(prefix)
    if size > MAX_BODY:
        raise ValueError(f"frame of {size} bytes exceeds the channel limit")
    return size, kind


PREFIX_SIZE = _FRAME.size


def send(sock: socket.socket, kind: int, header: dict[str, Any], payload: bytes = b"") -> None:
    sock.sendall(encode(kind, header, payload))


def linger(fd: int) -> None:
    """After a process's last frame (an init error), read and drop what the server sends
    until it ends the process or closes the channel.

    Exiting with the server's bytes unread (an invocation sent ahead of the init) would reset
    the channel, and fail a server write still in progress; asyncio then drops the channel's
    unread frames, the one just sent among them."""
    while True:
        try:
            if not os.read(fd, 65536):
                return
        except InterruptedError:
            continue
        except OSError:
            return


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    view = bytearray(size)
    got = 0
    while got < size:
        n = sock.recv_into(memoryview(view)[got:], size - got)
        if n == 0:
            raise ChannelClosed()
        got += n
    return bytes(view)


def recv(sock: socket.socket) -> tuple[int, dict[str, Any], bytes]:
    """Blocking receive of one frame: (kind, header, payload)."""
    size, kind = parse_prefix(_recv_exact(sock, PREFIX_SIZE))
    header, payload = decode_body(_recv_exact(sock, size))
    return kind, header, payload
