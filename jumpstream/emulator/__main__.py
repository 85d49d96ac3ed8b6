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

from jumpstream.emulator.server import EmulatorSettings, create_app

_STARTUP_POLL_SECONDS = 0.01
#: Held and stalled streams never end by themselves: do not let them keep a stopping server up.
_GRACEFUL_SHUTDOWN_SECONDS = 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    defaults = EmulatorSettings()
    parser = argparse.ArgumentParser(
        prog="python -m jumpstream.emulator",
        description="A local SageMaker runtime (InvokeEndpointWithResponseStream) for TGI models.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--endpoint-name", default=defaults.endpoint_name)
    parser.add_argument("--model-id", default=defaults.model_id)
    parser.add_argument(
        "--tokens-per-second",
        type=float,
        default=defaults.tokens_per_second,
        help="0 sends as fast as possible",
    )
    parser.add_argument(
        "--first-token-delay", type=float, default=defaults.first_token_delay_seconds
    )
    parser.add_argument("--inference-component", default=None)
    parser.add_argument(
        "--cold-start",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --inference-component: refuse with no capacity for this long after the "
        "first call, as a component scaled to zero does while a copy starts",
    )
    parser.add_argument("--tgi-url", default=None, help="relay to this TGI server instead")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    if args.cold_start and args.inference_component is None:
        parser.error("--cold-start needs --inference-component: only components scale to zero")
    if args.cold_start < 0:
        parser.error("--cold-start must be 0 or more seconds")
    return args


def settings_from(args: argparse.Namespace) -> EmulatorSettings:
    return EmulatorSettings(
        endpoint_name=args.endpoint_name,
        model_id=args.model_id,
        tokens_per_second=args.tokens_per_second,
        first_token_delay_seconds=args.first_token_delay,
        inference_component=args.inference_component,
        cold_start_seconds=args.cold_start,
        tgi_url=args.tgi_url,
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
