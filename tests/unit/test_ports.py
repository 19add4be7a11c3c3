"""The stack's ports: chosen outside the kernel's ephemeral range, and moved when taken anyway.

CI once failed because localcloud's port, found by binding port 0, was taken by some outgoing
connection before localcloud bound it (``Port 51567 is in use by another program``)."""

from __future__ import annotations

import socket
from pathlib import Path

from localcloud import ports
from localcloud.stack import Stack


def test_free_ports_are_below_the_ephemeral_range() -> None:
    low = ports._ephemeral_low()
    chosen = {ports.free_port() for _ in range(50)}
    assert all(ports.LOWEST_PORT <= port < low for port in chosen), sorted(chosen)
    assert all(ports.port_free(port) for port in chosen)


def test_servers_say_so_when_their_port_is_taken() -> None:
    assert ports.lost_its_port("OSError: [Errno 98] Address already in use")
    assert ports.lost_its_port("Port 51567 is in use by another program. Either identify and stop that program")
    assert ports.lost_its_port("java.net.BindException: Address already in use")
    assert not ports.lost_its_port("ModuleNotFoundError: No module named 'flask'")


def test_a_server_whose_port_was_taken_starts_on_another(tmp_path: Path) -> None:
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", ports.free_port()))
    blocker.listen()
    taken = blocker.getsockname()[1]
    messages: list[str] = []
    stack = Stack(state_dir=tmp_path, fixed_ports=False, log=messages.append,
                  ports={"slack": taken})
    stack.pid_dir.mkdir(parents=True)
    stack.log_dir.mkdir(parents=True)
    try:
        stack._start_on_a_free_port("slack", stack._start_slack)
        assert stack.ports["slack"] != taken
        assert any(f"port {taken} was taken" in m for m in messages), messages
    finally:
        stack.down(quiet=True)
        blocker.close()
