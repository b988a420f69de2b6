"""Egress networking for environments: out to the world, nothing in, no host services.

One bridge per server with a private /20, NAT (nftables masquerade) for traffic leaving it, and
per environment a veth pair whose inner end is the environment's eth0 (made when its stem is,
off the cold-start path). The ruleset lives in its own nftables table:

  forward   from the bridge: TCP port 25 dropped; private, link-local, loopback and
            carrier-grade NAT destinations dropped (the host's neighbours); the rest accepted.
            Into the bridge: only replies (established/related).
  input     from the bridge: only Lamina's own API on the bridge address, and replies.
  output    into the bridge from this host: only replies (the host cannot connect in).
  bridge    ports are isolated: environments cannot reach one another.

Nothing can connect into an environment: its address is private to this host and only replies
are forwarded inwards. Requires root, the `nft` command, and the kernel's bridge, veth and NAT.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from pyroute2 import IPRoute

log = logging.getLogger(__name__)

PREFIX = 20
BLOCKED_DESTINATIONS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "0.0.0.0/8",
)


class NetworkError(RuntimeError):
    """The egress network could not be set up or attached."""


@dataclass(frozen=True, slots=True)
class Lease:
    """An environment's address; its veth goes away with its network namespace."""

    address: str
    prefix: int
    gateway: str
    host_interface: str


class EgressNetwork:
    """The bridge, the NAT ruleset and the address pool of one server."""

    def __init__(self, instance: str, api_port: int) -> None:
        digest = hashlib.sha256(instance.encode()).digest()
        # 10.200.0.0 - 10.249.240.0, in /20 steps: distinct per data directory.
        self.subnet = ipaddress.IPv4Network(
            f"10.{200 + digest[0] % 50}.{(digest[1] % 16) * 16}.0/{PREFIX}"
        )
        self.gateway = str(self.subnet.network_address + 1)
        self.bridge = f"lmb{digest.hex()[:10]}"
        self.table = f"lamina_{digest.hex()[:10]}"
        self._tag = digest.hex()[:6]
        self._api_port = api_port
        self._free = [str(a) for a in list(self.subnet.hosts())[1:]][::-1]
        self._lock = threading.Lock()
        self._counter = 0
        self._ip: IPRoute | None = None
        self._bridge_index = 0
        # pyroute2 runs its own asyncio loop: all netlink work happens on this one thread.
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lamina-netlink")

    @staticmethod
    def available() -> bool:
        return shutil.which("nft") is not None

    def open(self) -> None:
        """Create the bridge and the ruleset (blocks; at startup)."""
        self._thread.submit(self._open).result()

    async def attach(self, pid: int) -> Lease:
        """Give the network namespace of `pid` an eth0 on the bridge."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._attach, pid)

    def release(self, lease: Lease) -> None:
        """Return an address (the veth usually died with its namespace already)."""
        self._thread.submit(self._release, lease)

    def close(self) -> None:
        """Remove the bridge and the ruleset (blocks; at shutdown)."""
        self._thread.submit(self._close).result()
        self._thread.shutdown(wait=True)

    def _open(self) -> None:
        self._ip = IPRoute()
        self._remove_leftovers()
        try:
            self._ip.link("add", ifname=self.bridge, kind="bridge")
            index = self._bridge_index = self._index(self.bridge)
            self._ip.addr("add", index=index, address=self.gateway, mask=PREFIX)
            self._ip.link("set", index=index, state="up")
            with open("/proc/sys/net/ipv4/ip_forward", "w") as forward:
                forward.write("1")
            self._nft(self._ruleset())
        except Exception as error:
            self._close()
            raise NetworkError(f"cannot set up the egress network: {error}") from error

    def _attach(self, pid: int) -> Lease:
        assert self._ip is not None
        with self._lock:
            if not self._free:
                raise NetworkError(f"no free address in {self.subnet}")
            address = self._free.pop()
            self._counter += 1
            host = f"lmv{self._tag}{self._counter:x}"[:15]
            try:
                # One request makes the pair, puts the inner end in the namespace as eth0,
                # enslaves the outer end to the bridge and brings it up.
                self._ip.link(
                    "add",
                    ifname=host,
                    kind="veth",
                    peer={"ifname": "eth0", "net_ns_pid": pid},
                    master=self._bridge_index,
                    state="up",
                )
                self._ip.brport("set", index=self._index(host), isolated=1)
            except Exception as error:
                self._free.append(address)
                raise NetworkError(f"cannot attach environment {pid}: {error}") from error
        return Lease(address, PREFIX, self.gateway, host)

    def _release(self, lease: Lease) -> None:
        with self._lock:
            if self._ip is not None:
                # Usually already gone with its namespace; then netlink says so and that is fine.
                with contextlib.suppress(Exception):
                    self._ip.link("del", ifname=lease.host_interface)
            self._free.append(lease.address)

    def _close(self) -> None:
        if self._ip is None:
            return
        self._remove_leftovers()
        self._ip.close()
        self._ip = None

    @classmethod
    def clear(cls, instance: str) -> None:
        """Remove the bridge and ruleset a dead server of `instance` left behind."""
        network = cls(instance, 0)
        network._thread.submit(network._clear).result()
        network._thread.shutdown(wait=True)

    def _clear(self) -> None:
        self._ip = IPRoute()
        self._close()

    def _remove_leftovers(self) -> None:
        assert self._ip is not None
        for index in self._ip.link_lookup(ifname=self.bridge):
            self._ip.link("del", index=index)
        subprocess.run(
            ["nft", "delete", "table", "inet", self.table], capture_output=True, check=False
        )

    def _index(self, name: str) -> int:
        assert self._ip is not None
        found = self._ip.link_lookup(ifname=name)
        if not found:
            raise NetworkError(f"interface {name} does not exist")
        return int(found[0])

    def _ruleset(self) -> str:
        br, blocked = self.bridge, ", ".join(BLOCKED_DESTINATIONS)
        return f"""
table inet {self.table} {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr {self.subnet} oifname != "{br}" masquerade
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        iifname "{br}" tcp dport 25 drop
        iifname "{br}" ip daddr {{ {blocked} }} drop
        iifname "{br}" accept
        oifname "{br}" ct state established,related accept
        oifname "{br}" drop
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        iifname "{br}" ct state established,related accept
        iifname "{br}" ip daddr {self.gateway} tcp dport {self._api_port} accept
        iifname "{br}" drop
    }}
    chain output {{
        type filter hook output priority filter; policy accept;
        oifname "{br}" ct state established,related accept
        oifname "{br}" drop
    }}
}}
"""

    @staticmethod
    def _nft(ruleset: str) -> None:
        result = subprocess.run(["nft", "-f", "-"], input=ruleset, capture_output=True, text=True)
        if result.returncode != 0:
            raise NetworkError(f"nft refused the ruleset: {result.stderr.strip()}")
