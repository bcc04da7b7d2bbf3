"""The local stack's listening ports (devstack.fleet.free_ports)."""

from __future__ import annotations

import socket

from devstack.fleet import _ephemeral_start, free_ports


def test_ports_are_distinct_free_and_below_the_ephemeral_range_so_a_restart_gets_them_back() -> (
    None
):
    """A port from the ephemeral range can be taken, while its server restarts, by any outgoing
    connection (the fault run's object store failed to restart so: "address already in use")."""
    ports = free_ports(11)
    assert len(set(ports)) == 11
    assert all(1024 <= port < _ephemeral_start() for port in ports)
    for port in ports:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", port))
