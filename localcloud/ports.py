"""Loopback ports for the processes the local stack and the tests start.

A port found by binding port 0 comes from the kernel's ephemeral range, the same range every
outgoing connection takes its local port from. Between choosing the port and the server binding
it, any client on the machine (the emulator's JVM, a test's HTTP session) may take it: CI failed
once exactly so (``Port 51567 is in use by another program``). Ports below the ephemeral range are
never handed out implicitly, so a free one stays free unless someone binds it on purpose.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Linux keeps its range here; elsewhere (macOS, BSD: 49152-65535) the fallback below is below it too.
EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
FALLBACK_EPHEMERAL_LOW = 32768
LOWEST_PORT = 20000  # above the well-known and most registered service ports
ATTEMPTS = 200

# What a server prints when its port was taken after all (werkzeug, gunicorn, the emulator's JVM).
IN_USE_MARKERS = ("Address already in use", "is in use by another program", "BindException")


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return FALLBACK_EPHEMERAL_LOW


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port() -> int:
    """A free loopback port below the ephemeral range (or, if that is crowded, any free port)."""
    high = max(LOWEST_PORT + 1, min(_ephemeral_low(), 65536))
    for _ in range(ATTEMPTS):
        port = random.randrange(LOWEST_PORT, high)
        if port_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lost_its_port(log_tail: str) -> bool:
    """True when a server's output says it could not bind its port (worth a retry on another)."""
    return any(marker in log_tail for marker in IN_USE_MARKERS)
