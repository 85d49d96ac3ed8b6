"""``python -m jumpstream <command>``: the developer's entry point, one subcommand per task.

Each subcommand only parses its options and hands them to the module that does the work
(``local``, ``demo``, ``ask``, ``bench``), so that work can be tested without a shell.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Final, TextIO

from jumpstream import ask, bench, demo, local
from jumpstream.reading import FORMATS

__all__ = ["build_parser", "main"]

PROGRAM: Final = "python -m jumpstream"
EXIT_INTERRUPTED: Final = 130

_DESCRIPTION = """\
Stream tokens from a SageMaker JumpStart LLM through a Lambda function URL.

Run the relay locally against an emulated SageMaker endpoint (local, demo, bench), or
send a prompt to a deployed function URL (ask)."""

_EPILOG = """\
examples:
  python -m jumpstream demo
  python -m jumpstream local --port 8080
  python -m jumpstream ask --url https://ID.lambda-url.us-east-1.on.aws/ "Hello"
  python -m jumpstream bench --sizes 64,512"""

_LOCAL_EPILOG = f"""\
The relay is started exactly as the Lambda Web Adapter starts it (sh lambda/streamer/run.sh),
with dummy AWS credentials and AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME pointing at the emulator.
Steer the emulator from the prompt, e.g. "[[fault:stream_broken@5]]" or "[[split:1]]".

example, once it is up:
  {local.curl_example("http://127.0.0.1:8080")}"""


def _positive_float(text: str) -> float:
    value = _float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0 (got {text})")
    return value


def _non_negative_float(text: str) -> float:
    value = _float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


def _float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _port(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (got {text})")
    return value


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {text})")
    return value


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _int_list(text: str) -> tuple[int, ...]:
    values = tuple(_positive_int(part.strip()) for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError("give at least one number, e.g. 64,512")
    return values


def _format_list(text: str) -> tuple[str, ...]:
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [value for value in values if value not in FORMATS]
    if unknown or not values:
        raise argparse.ArgumentTypeError(f"formats are {', '.join(FORMATS)} (got {text!r})")
    return values


def _http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL (got {text!r})")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, subcommands included."""
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    _add_local(commands)
    _add_demo(commands)
    _add_ask(commands)
    _add_bench(commands)
    return parser


def _add_stack_options(parser: argparse.ArgumentParser, *, tokens_per_second: float) -> None:
    parser.add_argument(
        "--model-id",
        default=local.DEFAULT_MODEL_ID,
        metavar="ID",
        help="the JumpStart model the stack pretends to run (default: %(default)s)",
    )
    parser.add_argument(
        "--tokens-per-second",
        type=_non_negative_float,
        default=tokens_per_second,
        metavar="N",
        help="the emulated model's pace; 0 is as fast as possible (default: %(default)g)",
    )


def _add_local(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "local",
        help="run the emulator and the real relay on loopback until Ctrl-C",
        description="Run the SageMaker emulator and the real relay on loopback until Ctrl-C.",
        epilog=_LOCAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=8080,
        help="the relay's port; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--emulator-port",
        type=_port,
        default=0,
        metavar="PORT",
        help="the emulator's port; 0 picks a free one (default: %(default)s)",
    )
    _add_stack_options(parser, tokens_per_second=25.0)
    parser.add_argument(
        "--first-token-delay",
        type=_non_negative_float,
        default=None,
        metavar="SECONDS",
        help="seconds before the first token (default: the emulator's, 0.2)",
    )
    parser.add_argument(
        "--tgi-url",
        type=_http_url,
        default=None,
        metavar="URL",
        help="forward to this real TGI server instead of the stand-in model",
    )
    parser.set_defaults(handler=_run_local)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "demo",
        help="stream one answer through the local stack, then stop (what `make demo` runs)",
        description=(
            "Start the local stack on free ports, stream one answer through the real relay "
            "as plain text, print a summary line and stop."
        ),
    )
    parser.add_argument(
        "--prompt", default=demo.DEMO_PROMPT, help="what to ask (default: %(default)r)"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=_positive_int,
        default=128,
        metavar="N",
        help="the most tokens to generate (default: %(default)s)",
    )
    _add_stack_options(parser, tokens_per_second=25.0)
    parser.add_argument(
        "--verbose", action="store_true", help="show the emulator's and the relay's own output"
    )
    parser.set_defaults(handler=_run_demo)


def _add_ask(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "ask",
        help="send a prompt to a deployed relay (SigV4-signed) and stream the answer",
        description=(
            "Send a prompt to a relay's function URL and print the answer as it streams. "
            "Requests are signed with SigV4 (service lambda) using botocore's credential "
            "chain. The text goes to stdout; the end of the answer and errors go to stderr. "
            "Exit status 1 means the answer is not complete."
        ),
    )
    parser.add_argument("prompt", help='the prompt; "-" reads it from stdin')
    parser.add_argument(
        "--url", required=True, type=_http_url, help="the relay's URL (the function URL)"
    )
    parser.add_argument(
        "--max-new-tokens", type=_positive_int, default=None, metavar="N", help="token limit"
    )
    parser.add_argument(
        "--temperature",
        type=_positive_float,
        default=None,
        metavar="T",
        help="sampling temperature",
    )
    parser.add_argument(
        "--format",
        dest="output_format",
        choices=FORMATS,
        default="text",
        help="the answer's format on the wire (default: %(default)s)",
    )
    parser.add_argument(
        "--region", default=None, help="the function's region (default: read from the URL)"
    )
    parser.add_argument(
        "--no-sign",
        dest="sign",
        action="store_false",
        help="send without SigV4 (a local relay, or a URL with auth type NONE)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_float,
        default=300.0,
        metavar="SECONDS",
        help="the longest silence to wait through (default: %(default)g)",
    )
    parser.set_defaults(handler=_run_ask)


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = bench.BenchOptions()
    parser = commands.add_parser(
        "bench",
        help="measure the relay side by side with the alternatives (what `make bench` runs)",
        description=(
            "Measure the relay through the local stack next to boto3 calling the emulator "
            "directly, its decoder next to sagemaker-core's LineIterator, and its cold start "
            "next to a FastAPI app. Prints a table and writes --output-dir/latest.json."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a reduced run, under a minute: the same figures from fewer samples",
    )
    parser.add_argument(
        "--output-dir",
        default=str(defaults.output_dir),
        metavar="DIR",
        help="where the JSON results go (default: %(default)s)",
    )
    parser.set_defaults(handler=_run_bench)


def _run_local(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    config = local.StackConfig(
        relay_port=args.port,
        emulator_port=args.emulator_port,
        model_id=args.model_id,
        tokens_per_second=args.tokens_per_second,
        first_token_delay=args.first_token_delay,
        tgi_url=args.tgi_url,
    )
    return local.run_local(config, stdout=stdout, stderr=stderr)


def _run_demo(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    options = demo.DemoOptions(
        prompt=args.prompt,
        max_new_tokens=args.max_new_tokens,
        tokens_per_second=args.tokens_per_second,
        model_id=args.model_id,
        verbose=args.verbose,
    )
    return demo.run_demo(options, stdout=stdout, stderr=stderr)


def _run_ask(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    options = ask.AskOptions(
        url=args.url,
        prompt=prompt,
        output_format=args.output_format,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        region=args.region,
        sign=args.sign,
        timeout=args.timeout,
    )
    return ask.run_ask(options, stdout=stdout, stderr=stderr)


def _run_bench(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    options = bench.BenchOptions(quick=args.quick, output_dir=args.output_dir)
    return bench.run_bench(options, stdout=stdout, stderr=stderr)


Handler = Callable[[argparse.Namespace, TextIO, TextIO], int]


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Parse ``argv`` and run the chosen command; return its exit status."""
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args, stdout or sys.stdout, stderr or sys.stderr)
    except KeyboardInterrupt:
        # demo and bench stop their children on the way out, local handles its own signals, and
        # ask starts none: nothing else to clean up.
        (stderr or sys.stderr).write("interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `... | head`: the reader left; say nothing more.
        return 1
