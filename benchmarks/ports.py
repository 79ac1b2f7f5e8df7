"""Free local ports for benchmark servers, from a range kept clear of other people's runs."""

from __future__ import annotations

import random
import socket

LOW, HIGH = 43000, 43999


def bench_port() -> int:
    """A port in 43000-43999 that nothing is bound to right now."""
    for _ in range(500):
        port = random.randint(LOW, HIGH)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {LOW}-{HIGH}")
