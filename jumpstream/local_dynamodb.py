"""A local DynamoDB-compatible server holding the API keys' table: moto's, one request at a time.

`jumpstream local --api-keys` runs the relay against it, `keys --endpoint-url` manages its keys,
and the tests use both. It runs as a child process (``python -m jumpstream.local_dynamodb``), as
the emulator does: moto keeps its data in module-level state, which an in-process `mock_aws`
elsewhere in the same process would reset or intercept.

Why one request at a time: moto's server (werkzeug, threaded) runs each request on its own thread,
and its DynamoDB `UpdateItem` reads the item, checks the condition and writes the result with no
lock around the three. Two relays counting a key's requests of one minute with a conditional ADD
can then both pass a condition only one of them should (16 threads adding to a count capped at 10
stored 11 and were told 12 times that they had succeeded). DynamoDB applies each conditional
write atomically; holding one lock around every request gives the local server the same
guarantee, so concurrency tests against it mean what they would mean against DynamoDB. The
requests still arrive on their own threads and connections: only the work inside moto is in turn.

moto is a development dependency (requirements-dev.txt), imported only when the server starts.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from streamer.contract import KeyTable

from jumpstream import arguments
from jumpstream.procs import Child, LineSink

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

__all__ = [
    "DEFAULT_TABLE",
    "LOCAL_CREDENTIAL",
    "LOCAL_REGION",
    "LocalDynamoDB",
    "create_keys_table",
    "local_client",
    "serve",
    "start_local_dynamodb",
]

#: The keys' table the local server creates unless told another name.
DEFAULT_TABLE: Final = "jumpstream-local-api-keys"
#: moto keeps a table per region: the server creates it here, and `keys --endpoint-url` looks
#: here unless given --region.
LOCAL_REGION: Final = "us-east-1"
#: Any credentials will do for the local server; these are what its clients sign with.
LOCAL_CREDENTIAL: Final = "local"
_LOOPBACK: Final = "127.0.0.1"
_LISTENING: Final = re.compile(r"local DynamoDB listening on (http://\S+)")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True, slots=True)
class LocalDynamoDB:
    """A running local server: where it listens, its keys' table, and the region that holds it."""

    endpoint_url: str
    table_name: str
    region: str
    child: Child

    def client(self) -> Any:
        """A boto3 DynamoDB client for this server."""
        return local_client(self.endpoint_url, region=self.region)


def local_client(endpoint_url: str, *, region: str = LOCAL_REGION) -> Any:
    """A boto3 DynamoDB client for a local server, signing with placeholder credentials."""
    import boto3

    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=LOCAL_CREDENTIAL,
        aws_secret_access_key=LOCAL_CREDENTIAL,
    )


def create_keys_table(client: Any, table_name: str) -> None:
    """Create the keys' table as the relay stack does: `pk` and `sk` strings, on demand, with the
    per-minute counts expiring on KeyTable.TTL."""
    client.create_table(
        TableName=table_name,
        KeySchema=[
            {"AttributeName": KeyTable.PARTITION_KEY, "KeyType": "HASH"},
            {"AttributeName": KeyTable.SORT_KEY, "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": KeyTable.PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": KeyTable.SORT_KEY, "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    client.get_waiter("table_exists").wait(TableName=table_name)
    client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": KeyTable.TTL},
    )


class _OneAtATime:
    """A WSGI application that lets one request at a time into the one it wraps (see the module's
    docstring). The answer is read in full inside the lock: moto builds it there."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self._lock:
            answer = self._app(environ, start_response)
            try:
                return [b"".join(answer)]
            finally:
                close = getattr(answer, "close", None)
                if close is not None:
                    close()


def serve(host: str = _LOOPBACK, port: int = 0) -> BaseWSGIServer:
    """moto's server on ``host:port`` (0: a free port), one request at a time, not yet serving:
    call its ``serve_forever()``; ``server_port`` says where it listens."""
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server
    except ImportError as error:
        raise RuntimeError(
            f"the local DynamoDB server needs moto[server,dynamodb] ({error}); "
            "install the development requirements: pip install -r requirements-dev.txt"
        ) from None

    class QuietHandler(MotoRequestHandler):  # type: ignore[misc,valid-type]
        """No line per request: the relay's own log says what happened."""

        def log_request(self, *args: object, **kwargs: object) -> None:
            pass

    app = _OneAtATime(DomainDispatcherApplication(create_backend_app))
    return make_server(host, port, app, threaded=True, request_handler=QuietHandler)


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or Ctrl-C, after creating the keys' table and saying where."""
    parser = argparse.ArgumentParser(
        prog="python -m jumpstream.local_dynamodb",
        description="A local DynamoDB-compatible server (moto) holding the API keys' table.",
    )
    parser.add_argument("--port", type=arguments.port, default=0, help="0: a free port")
    parser.add_argument("--table", default=DEFAULT_TABLE, help="(default: %(default)s)")
    parser.add_argument("--region", default=LOCAL_REGION, help="(default: %(default)s)")
    args = parser.parse_args(argv)
    server = serve(_LOOPBACK, args.port)
    endpoint_url = f"http://{_LOOPBACK}:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, name="dynamodb", daemon=True)
    thread.start()
    create_keys_table(local_client(endpoint_url, region=args.region), args.table)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    print(
        f"local DynamoDB listening on {endpoint_url} (table {args.table}, region {args.region})",
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        stop.wait()
    server.shutdown()
    thread.join()
    return 0


@contextlib.contextmanager
def start_local_dynamodb(
    *,
    sink: LineSink,
    table_name: str = DEFAULT_TABLE,
    region: str = LOCAL_REGION,
    port: int = 0,
    timeout: float = 30.0,
) -> Iterator[LocalDynamoDB]:
    """Start the server as a child process with the keys' table created; stop it when the block
    ends. ``sink`` receives its output lines. Raises procs' ChildExited or StartupTimeout when it
    does not come up."""
    from jumpstream.local import REPO_ROOT

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "jumpstream.local_dynamodb"]
    command += ["--port", str(port), "--table", table_name, "--region", region]
    child = Child("dynamodb", command, cwd=REPO_ROOT, env=env, sink=sink)
    try:
        endpoint_url = child.wait_for_line(_LISTENING, timeout=timeout).group(1)
        yield LocalDynamoDB(
            endpoint_url=endpoint_url, table_name=table_name, region=region, child=child
        )
    finally:
        child.stop()


if __name__ == "__main__":
    raise SystemExit(main())
