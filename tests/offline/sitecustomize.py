"""Network guard for every Python process the tests start (kernels, the CLI, nbval): on PYTHONPATH with
DCGAN_BLOCK_NETWORK=1, outgoing connections other than loopback and Unix sockets are refused at once."""

from __future__ import annotations

import os
import socket

_real_connect = socket.socket.connect
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def local_only_connect(sock: socket.socket, address):
    """socket.connect that allows Unix sockets and loopback, and refuses everything else."""
    if sock.family == socket.AF_UNIX or (isinstance(address, tuple) and address[0] in LOOPBACK):
        return _real_connect(sock, address)
    raise ConnectionRefusedError(f"tests must not reach the network (tried to connect to {address})")


if os.environ.get("DCGAN_BLOCK_NETWORK") == "1":
    socket.socket.connect = local_only_connect
