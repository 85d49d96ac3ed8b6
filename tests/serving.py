"""An ASGI app on a real loopback socket, for tests that must see pieces arrive one by one.

httpx's ASGI transport returns only whole bodies; streaming shows only over a real connection.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import uvicorn
from streamer.http_server import SERVER_OPTIONS

# A generous guard against hangs; never a statement about speed.
HANG_GUARD_SECONDS = 30.0


@contextmanager
def serving(app: Any, options: Mapping[str, Any] = SERVER_OPTIONS) -> Iterator[str]:
    """Run uvicorn exactly as __main__ does (its SERVER_OPTIONS, unless `options` says
    otherwise) on a free loopback port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(int(HANG_GUARD_SECONDS * 100)):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(HANG_GUARD_SECONDS)
        sock.close()
