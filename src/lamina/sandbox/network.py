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

import hashlib
import ipaddress
import itertools
import logging
import shutil
import subprocess
from dataclasses import dataclass

from lamina.sandbox.netlink import Rtnetlink, index_of

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
        third = (digest[1] % 16) * 16
        self.subnet = ipaddress.IPv4Network(f"10.{200 + digest[0] % 50}.{third}.0/{PREFIX}")
        self.gateway = str(self.subnet.network_address + 1)
        self.bridge = f"lmb{digest.hex()[:10]}"
        self.table = f"lamina_{digest.hex()[:10]}"
        self._tag = digest.hex()[:6]
        self._api_port = api_port
        self._free = [str(a) for a in list(self.subnet.hosts())[1:]][::-1]
        self._counter = itertools.count(1)
        self._netlink: Rtnetlink | None = None
        self._bridge_index = 0

    @staticmethod
    def available() -> bool:
        return shutil.which("nft") is not None

    def open(self) -> None:
        """Create the bridge and the ruleset (at startup)."""
        self._netlink = Rtnetlink()
        self._remove_leftovers()
        try:
            self._netlink.add_bridge(self.bridge)
            self._bridge_index = index_of(self.bridge)
            self._netlink.add_ipv4(self._bridge_index, self.gateway, PREFIX)
            self._netlink.set_up(self._bridge_index)
            with open("/proc/sys/net/ipv4/ip_forward", "w") as forward:
                forward.write("1")
            self._nft(self._ruleset())
        except Exception as error:
            self.close()
            raise NetworkError(f"cannot set up the egress network: {error}") from error

    def attach(self, pid: int) -> Lease:
        """Give the network namespace of `pid` an eth0 on the bridge (two netlink requests:
        creating the veth pair takes the kernel about a millisecond, so the server calls this
        in a worker thread). Raises NetworkError when the pool is empty or netlink fails."""
        assert self._netlink is not None
        try:
            address = self._free.pop()  # atomic: attaches may run in several threads
        except IndexError:
            raise NetworkError(f"no free address in {self.subnet}") from None
        host = f"lmv{self._tag}{next(self._counter):x}"[:15]
        try:
            self._netlink.add_veth_into(host, pid, "eth0", self._bridge_index)
            self._netlink.isolate_port(index_of(host))
        except OSError as error:
            self._free.append(address)
            self._netlink.delete(host)
            raise NetworkError(f"cannot attach environment {pid}: {error}") from error
        return Lease(address, PREFIX, self.gateway, host)

    def release(self, lease: Lease) -> None:
        """Return the address; the veth usually died with its namespace already."""
        if self._netlink is not None:
            self._netlink.delete(lease.host_interface)
        self._free.append(lease.address)

    def close(self) -> None:
        """Remove the bridge and the ruleset (at shutdown)."""
        if self._netlink is None:
            return
        self._remove_leftovers()
        self._netlink.close()
        self._netlink = None

    @classmethod
    def clear(cls, instance: str) -> None:
        """Remove the bridge and ruleset a dead server of `instance` left behind."""
        network = cls(instance, 0)
        network._netlink = Rtnetlink()
        network.close()

    def _remove_leftovers(self) -> None:
        assert self._netlink is not None
        self._netlink.delete(self.bridge)
        subprocess.run(
            ["nft", "delete", "table", "inet", self.table], capture_output=True, check=False
        )

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
