"""reserve_port: a restarted aggregator binds although old connections linger in TIME_WAIT."""

from __future__ import annotations

import socket

import pytest
from esenas_aggregator.service import reserve_port


def test_rebinds_with_connections_in_time_wait() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = listener.accept()
    conn.close()  # the server side closes first, as a killed aggregator's kernel does: TIME_WAIT
    listener.close()
    client.recv(1)
    client.close()
    assert reserve_port("127.0.0.1", port) == port


def test_refuses_a_port_with_a_live_listener() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with pytest.raises(OSError, match="cannot bind the gRPC port"):
            reserve_port("127.0.0.1", port)
