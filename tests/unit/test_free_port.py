"""The tests' free_port(): never a port the kernel may give an outgoing connection."""

from __future__ import annotations

import socket

from support.idp import ephemeral_range, free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    low, _ = ephemeral_range()
    ports = [free_port() for _ in range(300)]
    assert all(p < low for p in ports), [p for p in ports if p >= low][:5]
    assert len(set(ports)) == len(ports)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports[-1]))


def test_a_port_held_by_a_listener_is_never_given() -> None:
    low, _ = ephemeral_range()
    assert low > 10050  # the ports held below are in the range free_port draws from
    held = []
    try:
        for port in range(10000, 10000 + 50):  # some of the low ports, held while we ask
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                sock.close()
                continue
            sock.listen()
            held.append(sock)
        taken = {s.getsockname()[1] for s in held}
        assert not taken & {free_port() for _ in range(2000)}
    finally:
        for sock in held:
            sock.close()
