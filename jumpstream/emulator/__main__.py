"""Run the emulator under uvicorn: ``python -m jumpstream.emulator --port 0``.

Prints ``emulator listening on http://HOST:PORT`` (flushed) once it accepts connections, so a
parent process can start it with port 0 and read the URL it got.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Sequence

import uvicorn

from jumpstream.emulator import options
from jumpstream.emulator.server import EmulatorSettings, create_app

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081
DEFAULT_LOG_LEVEL = "warning"
_STARTUP_POLL_SECONDS = 0.01
#: Held and stalled streams never end by themselves: do not let them keep a stopping server up.
_GRACEFUL_SHUTDOWN_SECONDS = 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jumpstream.emulator",
        description=(
            "A local SageMaker runtime (InvokeEndpoint and InvokeEndpointWithResponseStream) "
            "for models served by TGI, LMI or vLLM."
        ),
    )
    options.HOST.add_to(parser, default=DEFAULT_HOST)
    options.PORT.add_to(parser, default=DEFAULT_PORT)
    defaults = EmulatorSettings()
    for option in options.SETTINGS:
        option.add_to(parser, default=getattr(defaults, option.dest))
    options.LOG_LEVEL.add_to(parser, default=DEFAULT_LOG_LEVEL)
    args = parser.parse_args(argv)
    problem = options.settings_problem(
        inference_component=args.inference_component,
        cold_start=args.cold_start,
        model_id=args.model_id,
        engine=args.engine,
        tgi_url=args.tgi_url,
    )
    if problem is not None:
        parser.error(problem)
    return args


def settings_from(args: argparse.Namespace) -> EmulatorSettings:
    return EmulatorSettings(
        **{option.dest: getattr(args, option.dest) for option in options.SETTINGS}
    )


def bind(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts, so that port 0 resolves to a port we can print."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP spelled out so asyncio sets TCP_NODELAY on each accepted connection (it does
    # only for sockets whose protocol says TCP): otherwise every boto3 call waits ~40 ms for Nagle.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


async def serve(server: uvicorn.Server, sock: socket.socket) -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(_STARTUP_POLL_SECONDS)
    if server.started:
        print(f"emulator listening on {url_of(sock)}", flush=True)
    await task


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sock = bind(args.host, args.port)
    except OSError as error:
        print(f"emulator cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        create_app(settings_from(args)),
        log_level=args.log_level,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    asyncio.run(serve(server, sock))
    return 0 if server.started else 1


if __name__ == "__main__":
    sys.exit(main())
