"""`python -m streamer`: what run.sh starts, in Lambda (behind the Web Adapter) and on a laptop.

Settings are checked before anything binds a port; a bad one ends the process with exit status 2
and one line on stderr naming the variable, because that line is what a person reads first in
the function's log when a deployment does not come up.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from .contract import SERVICE_NAME

if TYPE_CHECKING:
    from .settings import Settings

__all__ = ["main"]

# The Web Adapter keeps its connections to the app open between invocations. uvicorn's default
# (5 s) closes an idle one just as the adapter may send the next request on it, which then fails:
# the app must keep idle connections longer than the adapter does.
KEEP_ALIVE_SECONDS = 75


def main() -> int:
    """Load settings, build the app (and its one SageMaker client), and serve until stopped."""
    # The start makes what lives as long as the process (its modules, botocore's models, the
    # app), and the cyclic collector's passes over everything made so far were a tenth of its
    # CPU. Made with the collector off, all of it is then frozen out of every later pass
    # (`gc.freeze`, before serving): the price is the start's cyclic garbage, held for good
    # (a few hundred objects, 400 to 750 as measured, most of them classes and functions that
    # imports made and replaced).
    gc.disable()
    from .settings import SettingsError, load_settings

    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        _say(f"configuration error: {error}")
        return 2

    import uvicorn

    from .app import create_app
    from .http_server import (
        ConnectionGate,
        MalformedRequestLines,
        connection_limit,
        gated_server_options,
        raise_file_limit,
    )

    try:
        app = create_app(settings)
    except Exception as error:  # botocore refuses, e.g., a malformed AWS_ENDPOINT_URL_* value
        _say(f"cannot create the SageMaker client: {error}")
        return 2

    # Bound here rather than by uvicorn, so that a port in use or an address this machine does
    # not have is one line naming HOST and PORT too, not uvicorn's log of an errno.
    try:
        listener = _listen(settings.host, settings.port)
    except OSError as error:
        _say(f"cannot listen on {settings.host} port {settings.port}: {error.strerror or error}")
        return 2

    file_limit = raise_file_limit()
    limit = connection_limit(file_limit, settings.max_connections)
    on_refused, on_malformed = _reporters(settings)
    gate = ConnectionGate(
        limit=limit,
        head_timeout=settings.request_head_timeout_seconds,
        body_timeout=settings.request_body_timeout_seconds,
        on_refused=on_refused,
        on_malformed=on_malformed,
    )
    # uvicorn announces the address only for sockets it bound itself: say it here, with where
    # the answers come from, as the first line a person reads in the function's log.
    where = f"[{settings.host}]" if ":" in settings.host else settings.host
    _say(
        f"listening on http://{where}:{settings.port}, relaying to SageMaker endpoint "
        f"{settings.endpoint_name} in {settings.region}"
    )
    fewer = (
        f": MAX_CONNECTIONS {settings.max_connections} is more than they allow"
        if settings.max_connections is not None and limit < settings.max_connections
        else ""
    )
    _say(f"serving at most {limit} connections at once ({file_limit} open files{fewer})")
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        **gated_server_options(gate),
    )
    # After uvicorn configured its loggers: its line per unparsable request is the gate's count.
    logging.getLogger("uvicorn.error").addFilter(MalformedRequestLines())
    server = uvicorn.Server(config)
    gc.freeze()
    gc.enable()
    server.run(sockets=[listener])
    return 0 if server.started else 3  # 3: uvicorn's own status for a failed start


def _reporters(settings: Settings) -> tuple[Callable[[int], None], Callable[[int], None]]:
    """One log line each for connections refused past the limit (with the RefusedConnections
    metric) and for requests that were not HTTP, with their counts (the gate calls each at
    most every few seconds)."""
    from .observability import MetricsContext, make_logger, refused_connections_metrics

    logger = make_logger(settings.service_name)
    metrics = MetricsContext(
        namespace=settings.metrics_namespace,
        environment=settings.environment_name,
        model=settings.model_name,
    )

    def refused(count: int) -> None:
        logger.warning(
            "connections refused: the relay serves as many as it may",
            extra={"refused_connections": count, **refused_connections_metrics(count, metrics)},
        )

    def malformed(count: int) -> None:
        logger.warning(
            "requests that were not HTTP/1.1 answered 400",
            extra={"malformed_requests": count},
        )

    return refused, malformed


def _listen(host: str, port: int) -> socket.socket:
    """A TCP socket bound to an address literal (settings checked it is one); the server
    listens on it."""
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on accepted sockets whose protocol
    # says TCP, and a socket made with protocol 0 passes that on. Without it the response head
    # and the first token leave as two small writes, the second held back by Nagle's algorithm
    # until the Web Adapter's delayed ACK (~40 ms on every warm request).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # As uvicorn does: a restarted relay may bind while old connections are in TIME_WAIT.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
    except OSError:
        listener.close()
        raise
    return listener


def _say(message: str) -> None:
    """One line on stderr, whatever the message holds: log viewers show one event per line."""
    print(f"{SERVICE_NAME}: {' '.join(message.split())}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
