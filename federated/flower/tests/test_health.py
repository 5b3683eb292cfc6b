"""giftcloud-flower-health against Flower's own health server (what the SuperLink,
SuperNode and gate serve with --health-server-address)."""

from __future__ import annotations

import socket

import pytest
from flwr.supercore.grpc_health import run_health_server_grpc_no_tls
from giftcloud_flower.health import main, serving


def free_address() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


def test_a_serving_flower_process_passes_and_a_silent_address_fails_in_one_line() -> None:
    address = free_address()
    server = run_health_server_grpc_no_tls(address)
    try:
        assert serving(address) is None
        main([address])  # exits only when not serving
    finally:
        server.stop(None)
    silent = free_address()
    assert serving(silent, timeout=1) == f"{silent} did not answer: UNAVAILABLE"
    with pytest.raises(SystemExit) as exited:
        main([silent])
    assert str(exited.value) == f"giftcloud-flower-health: {silent} did not answer: UNAVAILABLE"
