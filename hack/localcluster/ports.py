"""Free TCP ports on the loopback interface, chosen outside the kernel's ephemeral range.

A port from `bind(port 0)` is an ephemeral one, the range the kernel also takes the source port of
every outgoing connection from. Between the check here and the component's own bind, any
process's connection (the API server's clients, etcd's, kubelet's) may take it: the component then
fails to listen ("address already in use"), as the real node's kube-proxy once did in CI. A port
below or above that range is never handed out implicitly, so only an explicit bind can race.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOWEST = 10000
"""Below this, well-known and registered services live; above, ports are rarely configured."""
ATTEMPTS = 2000


def ephemeral_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int]:
    """The kernel's ephemeral port range (Linux's default where it cannot be read)."""
    try:
        low, high = (int(value) for value in Path(path).read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Return `count` distinct ports outside the ephemeral range that were free on `host` a moment ago.

    All sockets stay open until every port is chosen so none is chosen twice.
    """
    low, high = ephemeral_range()
    spans = [(LOWEST, low - 1), (high + 1, 65535)]
    spans = [(a, b) for a, b in spans if a <= b]
    chooser = random.SystemRandom()
    sockets: list[socket.socket] = []
    try:
        for _ in range(ATTEMPTS):
            if len(sockets) == count:
                break
            a, b = chooser.choice(spans)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind((host, chooser.randint(a, b)))
            except OSError:  # in use (or chosen already): another
                sock.close()
                continue
            sockets.append(sock)
        if len(sockets) < count:
            raise OSError(f"no {count} free ports outside the ephemeral range {low}-{high} on {host}")
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port(host: str = "127.0.0.1") -> int:
    """One port as `free_ports` chooses them."""
    return free_ports(1, host)[0]
