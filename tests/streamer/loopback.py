"""A scripted loopback peer: each connection it accepts runs a script of its own, on a thread, so a
test says byte by byte what the far side of one of the relay's connections does."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio

from tests.streamer.support import HANG_GUARD_SECONDS

__all__ = ["Script", "peer", "run"]

Script = Callable[[socket.socket], None]


@contextmanager
def peer(*scripts: Script) -> Iterator[int]:
    """A loopback listener whose n-th accepted connection runs the n-th script (in a thread);
    yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    errors: list[BaseException] = []

    def serve() -> None:
        for script in scripts:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                try:
                    script(connection)
                except OSError:
                    pass  # the client hung up: what several tests do
                except BaseException as error:  # an assertion in the script
                    errors.append(error)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(HANG_GUARD_SECONDS)
    assert not errors, errors


def run(function: Callable[[], Any]) -> Any:
    async def guarded() -> Any:
        with anyio.fail_after(HANG_GUARD_SECONDS):
            return await function()

    return anyio.run(guarded)
