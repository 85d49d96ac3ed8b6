"""``python -m jumpstream <command>``: the developer's entry point, one subcommand per task.

Each subcommand only parses its options and hands them to the module that does the work
(``local``, ``demo``, ``ask``, ``bench``), so that work can be tested without a shell.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, TextIO

from streamer import contract
from streamer.contract import KeyLimits

from jumpstream import (
    arguments,
    ask,
    bench,
    catalog_add,
    catalog_refresh,
    cost,
    demo,
    keys_command,
    local,
    preview,
    proxy,
)
from jumpstream.client import API_KEY_VARIABLE
from jumpstream.deployed import DeployedError, relay_url
from jumpstream.emulator import options as emulator_options

__all__ = ["build_parser", "main"]

PROGRAM: Final = "python -m jumpstream"


def _program() -> str:
    """How the user started it: the installed command, or the module."""
    return "jumpstream" if Path(sys.argv[0]).name == "jumpstream" else PROGRAM


#: How long `ask --wait` keeps trying: a component coming back from zero takes minutes.
DEFAULT_WAIT_SECONDS: Final = 900.0
EXIT_INTERRUPTED: Final = 130

_DESCRIPTION = """\
Stream tokens from a SageMaker JumpStart LLM through a Lambda function URL.

Run the relay locally against an emulated SageMaker endpoint (local, demo, bench), send a
prompt to a deployed function URL (ask), or put a deployed URL on 127.0.0.1 for tools that
cannot sign SigV4 requests (proxy)."""

_EPILOG = """\
examples:
  python -m jumpstream demo
  python -m jumpstream local --port 8081
  python -m jumpstream ask --url https://ID.lambda-url.us-east-1.on.aws/ "Hello"
  python -m jumpstream bench --quick
  python -m jumpstream proxy --env dev"""

_LOCAL_EPILOG = f"""\
The relay is started exactly as the Lambda Web Adapter starts it (sh lambda/streamer/run.sh),
with dummy AWS credentials and AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME pointing at the emulator.
Steer the emulator from the prompt, e.g. "[[fault:stream_broken@5]]" or "[[split:1]]".

example, once it is up:
  {local.curl_example(f"http://127.0.0.1:{local.StackConfig().relay_port}")}"""


class _CommandParser(argparse.ArgumentParser):
    """A subcommand's parser in which an option's optional value never swallows the next word.

    argparse gives an option with an optional value (`nargs="?"`, such as `ask --wait`) the
    word after it whatever it is, so `ask --wait "Hello"` failed with "--wait: not a number"
    instead of waiting for the default time and asking "Hello". Here such an option takes the
    next word only when it is a value of the option's type; otherwise the option stands alone
    (its `const`) and the word goes to the positional arguments, in the order the user typed.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        words = list(sys.argv[1:] if args is None else args)
        optional_values = {
            option: action
            for action in self._actions
            if action.nargs == argparse.OPTIONAL and action.option_strings
            for option in action.option_strings
        }
        for index, word in enumerate(words[:-1]):
            if word == "--":
                break
            action = optional_values.get(word)
            if action is not None and not _is_value(action, words[index + 1]):
                words[index] = f"{word}={action.const}"
        return super().parse_known_args(words, namespace)


def _is_value(action: argparse.Action, word: str) -> bool:
    """Whether `word` is meant as `action`'s value: one its type accepts, or any number (so a
    number out of range is refused with the option's own message, not taken as the prompt)."""
    try:
        float(word)
    except ValueError:
        pass
    else:
        return True
    if word.startswith("-") or not callable(action.type):
        return False
    try:
        action.type(word)
    except (argparse.ArgumentTypeError, TypeError, ValueError):
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, subcommands included."""
    parser = argparse.ArgumentParser(
        prog=_program(),
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(
        dest="command", metavar="<command>", required=True, parser_class=_CommandParser
    )
    _add_local(commands)
    _add_demo(commands)
    _add_ask(commands)
    _add_bench(commands)
    _add_proxy(commands)
    _add_preview(commands)
    _add_catalog(commands)
    _add_cost(commands)
    _add_keys(commands)
    return parser


#: The emulator's options that `local` passes on, and those `demo` does.
_LOCAL_EMULATOR_OPTIONS = (
    emulator_options.MODEL_ID,
    emulator_options.ENGINE,
    emulator_options.TOKENS_PER_SECOND,
    emulator_options.FIRST_TOKEN_DELAY,
    emulator_options.TGI_URL,
    emulator_options.INFERENCE_COMPONENT,
    emulator_options.COLD_START,
)
_DEMO_EMULATOR_OPTIONS = (emulator_options.MODEL_ID, emulator_options.TOKENS_PER_SECOND)


def _add_local(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = local.StackConfig()
    parser = commands.add_parser(
        "local",
        help="run the emulator and the real relay on loopback until Ctrl-C",
        description="Run the SageMaker emulator and the real relay on loopback until Ctrl-C.",
        epilog=_LOCAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port",
        type=arguments.port,
        default=defaults.relay_port,
        help="the relay's port; 0 picks a free one (default: %(default)s)",
    )
    emulator_options.PORT.add_to(
        parser, flag="--emulator-port", dest="emulator_port", default=defaults.emulator_port
    )
    for option in _LOCAL_EMULATOR_OPTIONS:
        option.add_to(parser, default=getattr(defaults, option.dest))
    parser.add_argument(
        "--api-keys",
        action="store_true",
        help=(
            'the relay takes API keys, as a deployed relay with auth = "API_KEY" does: a local '
            "DynamoDB-compatible server keeps them, and a key is made and printed"
        ),
    )
    parser.set_defaults(handler=_run_local)


def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = demo.DemoOptions()
    parser = commands.add_parser(
        "demo",
        help="stream one answer through the local stack, then stop (what `make demo` runs)",
        description=(
            "Start the local stack on free ports, stream one answer through the real relay "
            "as plain text, print a summary line and stop."
        ),
    )
    parser.add_argument(
        "--prompt", default=defaults.prompt, help="what to ask (default: %(default)r)"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=arguments.positive_int,
        default=defaults.max_new_tokens,
        metavar="N",
        help="the most tokens to generate (default: %(default)s)",
    )
    for option in _DEMO_EMULATOR_OPTIONS:
        option.add_to(parser, default=getattr(defaults, option.dest))
    parser.add_argument(
        "--verbose", action="store_true", help="show the emulator's and the relay's own output"
    )
    parser.set_defaults(handler=_run_demo)


def _add_ask(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "ask",
        help="send a prompt to a relay (SigV4-signed when deployed) and stream the answer",
        description=(
            "Send a prompt to a relay's function URL and print the answer as it streams. "
            "A function URL is signed with SigV4 (service lambda) using botocore's credential "
            "chain; a loopback URL is not, unless --sign. A relay that takes API keys gets the "
            f"key in ${API_KEY_VARIABLE} instead. The text goes to stdout; errors go "
            "to stderr. Exit status 1 means the answer is not complete."
        ),
    )
    parser.add_argument("prompt", help='the prompt; "-" reads it from stdin')
    _add_relay_location(parser)
    parser.add_argument(
        "--chat",
        action="store_true",
        help="send the prompt as a user message, laid out in the model's own prompt format",
    )
    parser.add_argument(
        "--system", default=None, metavar="TEXT", help="with --chat: a system message first"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=arguments.positive_int,
        default=None,
        metavar="N",
        help="token limit",
    )
    parser.add_argument(
        "--temperature",
        type=arguments.positive_float,
        default=None,
        metavar="T",
        help="sampling temperature",
    )
    signing = parser.add_mutually_exclusive_group()
    signing.add_argument(
        "--sign",
        dest="sign",
        action="store_const",
        const=True,
        default=None,
        help="sign even a URL that is not a function URL (needs --region unless it is one)",
    )
    signing.add_argument(
        "--no-sign",
        dest="sign",
        action="store_const",
        const=False,
        help="never sign (a local relay, or a URL with auth type NONE)",
    )
    parser.add_argument(
        "--timeout",
        type=arguments.positive_float,
        default=300.0,
        metavar="SECONDS",
        help="the longest silence to wait through (default: %(default)g)",
    )
    parser.add_argument(
        "--wait",
        type=arguments.non_negative_float,
        nargs="?",
        const=DEFAULT_WAIT_SECONDS,
        default=0.0,
        metavar="SECONDS",
        help=(
            "while the model is starting (scaled to zero) or busy, keep trying until the answer "
            f"starts, for at most SECONDS (default when given alone: {DEFAULT_WAIT_SECONDS:g}); "
            "before or after the prompt"
        ),
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


def _add_catalog(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "catalog",
        help="maintain the model catalog (stacks/models.json, stacks/availability.json)",
        description="Maintain the model catalog.",
    )
    actions = parser.add_subparsers(dest="catalog_command", metavar="<command>", required=True)
    refresh = actions.add_parser(
        "refresh",
        help="compare the catalog with JumpStart's published metadata; --write applies it",
        description=(
            "Rebuild each catalog model's facts from its pinned JumpStart spec (read with "
            "sagemaker-core from JumpStart's S3 bucket; needs network access and any AWS "
            "credentials), adopt a pinned spec that moved to another engine (TGI, LMI, vLLM), "
            "report newer versions and refuse those on other containers, report deprecations, "
            "regenerate the availability tables from the installed cfn-lint, and print a diff. "
            "Nothing is written without --write."
        ),
    )
    refresh.add_argument(
        "--model",
        dest="model_ids",
        action="append",
        default=[],
        metavar="ID",
        help="refresh only this catalog model (repeatable; default: all)",
    )
    refresh.add_argument(
        "--write", action="store_true", help="write the changes into stacks/ (default: only show)"
    )
    refresh.add_argument(
        "--region",
        default=catalog_refresh.DEFAULT_REGION,
        help="the region whose JumpStart bucket is read (default: %(default)s)",
    )
    refresh.set_defaults(handler=_run_catalog_refresh)
    add = actions.add_parser(
        "add",
        help="add a JumpStart text-generation model (TGI, LMI or vLLM); --write applies it",
        description=(
            "Add a JumpStart model to the catalog with every fact refresh keeps, read from its "
            "spec and its own files in JumpStart's S3 bucket (needs network access and any "
            "AWS credentials): engine, image per region, artifact, environment, instance "
            "types and GPUs, startup timeouts, the licence of a gated model, EOS token, chat. "
            "Prints what is left to decide and a diff. Nothing is written without --write."
        ),
    )
    add.add_argument("model_id", metavar="MODEL_ID", help="JumpStart's model id")
    add.add_argument(
        "--version",
        metavar="V",
        help="the spec version to pin (default: the newest one jumpstream can deploy)",
    )
    add.add_argument(
        "--name", help="the model's name in the catalog (JumpStart's specs carry none)"
    )
    add.add_argument(
        "--write", action="store_true", help="write the changes into stacks/ (default: only show)"
    )
    add.add_argument(
        "--region",
        default=catalog_refresh.DEFAULT_REGION,
        help="the region whose JumpStart bucket is read (default: %(default)s)",
    )
    add.set_defaults(handler=_run_catalog_add)


def _run_catalog_add(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    options = catalog_add.AddOptions(
        model_id=args.model_id,
        version=args.version,
        name=args.name,
        write=args.write,
        region=args.region,
    )
    return catalog_add.run_add(options, stdout=stdout, stderr=stderr)


def _run_catalog_refresh(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    options = catalog_refresh.RefreshOptions(
        model_ids=tuple(args.model_ids), write=args.write, region=args.region
    )
    return catalog_refresh.run_refresh(options, stdout=stdout, stderr=stderr)


def _run_local(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    config = local.StackConfig(
        relay_port=args.port,
        emulator_port=args.emulator_port,
        api_keys=args.api_keys,
        **{option.dest: getattr(args, option.dest) for option in _LOCAL_EMULATOR_OPTIONS},
    )
    problem = emulator_options.settings_problem(
        inference_component=config.inference_component,
        cold_start=config.cold_start,
        model_id=config.model_id,
        engine=config.engine,
        tgi_url=config.tgi_url,
    )
    if problem is not None:
        stderr.write(f"jumpstream local: {problem}\n")
        return 2
    return local.run_local(config, stdout=stdout, stderr=stderr)


def _run_demo(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    options = demo.DemoOptions(
        prompt=args.prompt,
        max_new_tokens=args.max_new_tokens,
        verbose=args.verbose,
        **{option.dest: getattr(args, option.dest) for option in _DEMO_EMULATOR_OPTIONS},
    )
    return demo.run_demo(options, stdout=stdout, stderr=stderr)


def _run_ask(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if args.system is not None and not args.chat:
        stderr.write("jumpstream ask: --system goes with --chat\n")
        return 2
    located = _locate(args.url, args.env, args.region, stderr, command="ask")
    if located is None:
        return 2
    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    options = ask.AskOptions(
        url=located[0],
        prompt=prompt,
        chat=args.chat,
        system=args.system,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        region=located[1],
        sign=args.sign,
        timeout=args.timeout,
        wait=args.wait,
        api_key=os.environ.get(API_KEY_VARIABLE) or None,
    )
    return ask.run_ask(options, stdout=stdout, stderr=stderr)


def _locate(
    url: str | None, env: str | None, region: str | None, stderr: TextIO, *, command: str
) -> tuple[str, str | None] | None:
    """The URL and signing region, from --url or from --env's deployed stack (None: said why)."""
    if env is None:
        assert url is not None
        return url, region
    try:
        found_url, env_region = relay_url(env)
    except DeployedError as error:
        stderr.write(f"jumpstream {command}: {error}\n")
        return None
    return found_url, region or env_region


def _run_bench(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    options = bench.BenchOptions(quick=args.quick, output_dir=args.output_dir)
    return bench.run_bench(options, stdout=stdout, stderr=stderr)


def _add_relay_location(parser: argparse.ArgumentParser) -> None:
    """Where a deployed relay is: its URL, or an environment whose stack outputs it."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", type=arguments.http_url, help="the relay's URL (the function URL)")
    where.add_argument(
        "--env",
        metavar="NAME",
        help="an environment of environments.toml: the URL its deployed relay stack outputs",
    )
    parser.add_argument(
        "--region", default=None, help="the function's region (default: read from the URL)"
    )


def _add_proxy(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "proxy",
        help="serve a deployed relay on 127.0.0.1, SigV4-signing every request",
        description=(
            "Listen on 127.0.0.1 and forward every request to a relay's function URL, signed "
            "with SigV4 (service lambda) using botocore's credential chain, passing the answer "
            "back as it streams. Point OpenAI tools at http://127.0.0.1:PORT/v1."
        ),
    )
    _add_relay_location(parser)
    parser.add_argument(
        "--port",
        type=arguments.port,
        default=proxy.DEFAULT_PORT,
        help="the port on 127.0.0.1 (default: %(default)s)",
    )
    parser.add_argument(
        "--no-sign",
        dest="sign",
        action="store_false",
        help="forward without SigV4 (a URL with auth type NONE)",
    )
    parser.add_argument(
        "--wait",
        type=arguments.non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help=(
            "hold a caller's request while the model is starting (scaled to zero) or busy, "
            "retrying for at most SECONDS, instead of passing the 503 on (default: 0)"
        ),
    )
    parser.set_defaults(handler=_run_proxy)


def _run_proxy(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    located = _locate(args.url, args.env, args.region, stderr, command="proxy")
    if located is None:
        return 2
    options = proxy.ProxyOptions(url=located[0], port=args.port, region=located[1], sign=args.sign)
    return proxy.run_proxy(options, stdout=stdout, stderr=stderr)


def _add_preview(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = preview.PreviewOptions()
    parser = commands.add_parser(
        "dashboard-preview",
        help="plot the relay's metrics from a local run, as the dashboard will show them",
        description=(
            "Run the local stack, send a mix of requests (some failing on purpose), read the "
            "metrics in the relay's log lines as CloudWatch would, and plot them to a PNG."
        ),
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=defaults.output,
        metavar="PNG",
        help="where the picture goes (default: %(default)s)",
    )
    parser.add_argument(
        "--requests",
        type=arguments.positive_int,
        default=defaults.requests,
        metavar="N",
        help="how many requests (default: %(default)s)",
    )
    parser.set_defaults(handler=_run_preview)


def _run_preview(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    options = preview.PreviewOptions(output=args.output, requests=args.requests)
    return preview.run_preview(options, stdout=stdout, stderr=stderr)


def _add_cost(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "cost",
        help="what an environment bills, idle and busy, in instance-hours (and money)",
        description=(
            "Say how many instance-hours of which type an environment of environments.toml "
            "runs when idle and at most when busy. With AWS credentials, also in money: the "
            "type's on-demand price from the AWS Price List (no instance price is built in)."
        ),
    )
    parser.add_argument("--env", required=True, metavar="NAME", help="the environment")
    parser.add_argument(
        "--hosting",
        choices=("instance", "inference-component"),
        help="as if the environment's hosting were this (like cdk synth -c hosting=...)",
    )
    parser.set_defaults(handler=_run_cost)


def _run_cost(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    return cost.run_cost(args.env, stdout=stdout, stderr=stderr, hosting=args.hosting)


_KEYS_EPILOG = f"""\
The key is printed once, alone on stdout; its table keeps only a digest of its secret.
A revoked key is refused within {contract.KEY_CACHE_SECONDS} seconds. Times are UTC.

examples:
  python -m jumpstream keys create --env dev --name mobile-app --rpm 60 --tokens-per-day 200000
  python -m jumpstream keys list --env dev
  python -m jumpstream keys usage --env dev --days 30 --json
  python -m jumpstream keys revoke --env dev 0123456789ab"""

#: The default of `keys usage --days`: the last week, today included.
DEFAULT_USAGE_DAYS: Final = 7


def _add_keys(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "keys",
        help="make, list and revoke the API keys of a relay with auth API_KEY; show their usage",
        description=(
            'Manage the API keys a relay with auth = "API_KEY" accepts, in its DynamoDB '
            "table: the one an environment's relay stack outputs (--env), or one named with "
            "--table (on a local DynamoDB-compatible server with --endpoint-url)."
        ),
        epilog=_KEYS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="keys_command", metavar="<command>", required=True)
    where = argparse.ArgumentParser(add_help=False)
    table = where.add_mutually_exclusive_group(required=True)
    table.add_argument(
        "--env", metavar="NAME", help="an environment of environments.toml: its relay's table"
    )
    table.add_argument("--table", metavar="NAME", help="the table's name")
    where.add_argument(
        "--region", default=None, help="the table's region (default: the environment's)"
    )
    where.add_argument(
        "--endpoint-url",
        type=arguments.http_url,
        default=None,
        metavar="URL",
        help="a local DynamoDB-compatible server (with --table), e.g. jumpstream local's",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON, for scripts")

    create = actions.add_parser(
        "create",
        parents=[where, as_json],
        help="make a key and print it, once",
        description=(
            "Make a key, store its record (a digest of its secret, never the secret) and print "
            "the key once, alone on stdout. Limits left out are the environment's defaults."
        ),
    )
    create.add_argument(
        "--name",
        type=keys_command.key_name,
        required=True,
        help="who or what the key is for (shown by list and usage)",
    )
    create.add_argument(
        "--rpm",
        type=keys_command.limit(contract.KEY_REQUESTS_PER_MINUTE),
        metavar="N",
        help="requests per minute",
    )
    budget = create.add_mutually_exclusive_group()
    budget.add_argument(
        "--tokens-per-day",
        type=keys_command.limit(contract.KEY_TOKENS_PER_DAY),
        metavar="N",
        help="output tokens per UTC day",
    )
    budget.add_argument(
        "--tokens-per-month",
        type=keys_command.limit(contract.KEY_TOKENS_PER_MONTH),
        metavar="N",
        help="output tokens per UTC calendar month",
    )
    create.add_argument(
        "--expires",
        type=arguments.positive_int,
        metavar="DAYS",
        help="refuse the key this many days from now (default: never)",
    )
    create.set_defaults(handler=_run_keys_create)

    listing = actions.add_parser(
        "list",
        parents=[where, as_json],
        help="the keys: ids, names, limits, expiry, last use (never secrets)",
        description="List the keys: ids, names, status, limits, expiry and last use.",
    )
    listing.set_defaults(handler=_run_keys_list)

    revoke = actions.add_parser(
        "revoke",
        parents=[where],
        help="refuse a key from now on",
        description=(
            f"Mark a key revoked: the relay refuses it within {contract.KEY_CACHE_SECONDS} "
            "seconds. Its usage stays."
        ),
    )
    revoke.add_argument("key_id", type=keys_command.key_id, metavar="ID", help="the key's id")
    revoke.set_defaults(handler=_run_keys_revoke)

    usage = actions.add_parser(
        "usage",
        parents=[where, as_json],
        help="requests and tokens per key per day, with totals",
        description="Requests, prompt tokens and output tokens per key per UTC day.",
    )
    usage.add_argument(
        "--days",
        type=keys_command.usage_days,
        default=DEFAULT_USAGE_DAYS,
        metavar="N",
        help="the last N days, today included (default: %(default)s)",
    )
    usage.add_argument(
        "--key", type=keys_command.key_id, default=None, metavar="ID", help="only this key"
    )
    usage.set_defaults(handler=_run_keys_usage)


def _table_location(args: argparse.Namespace, stderr: TextIO) -> keys_command.TableLocation | None:
    """Where the keys' table is (None: said why it cannot be used)."""
    if args.endpoint_url is not None and args.env is not None:
        stderr.write(
            "jumpstream keys: --endpoint-url goes with --table (a local server has no stack)\n"
        )
        return None
    return keys_command.TableLocation(
        env=args.env, table=args.table, region=args.region, endpoint_url=args.endpoint_url
    )


def _run_keys_create(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    location = _table_location(args, stderr)
    if location is None:
        return 2
    limits = KeyLimits(
        requests_per_minute=args.rpm,
        tokens_per_day=args.tokens_per_day,
        tokens_per_month=args.tokens_per_month,
    )
    return keys_command.run_create(
        location,
        name=args.name,
        limits=limits,
        expires_in_days=args.expires,
        as_json=args.json,
        stdout=stdout,
        stderr=stderr,
    )


def _run_keys_list(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    location = _table_location(args, stderr)
    if location is None:
        return 2
    return keys_command.run_list(location, as_json=args.json, stdout=stdout, stderr=stderr)


def _run_keys_revoke(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    location = _table_location(args, stderr)
    if location is None:
        return 2
    return keys_command.run_revoke(location, args.key_id, stdout=stdout, stderr=stderr)


def _run_keys_usage(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    location = _table_location(args, stderr)
    if location is None:
        return 2
    return keys_command.run_usage(
        location, days=args.days, key=args.key, as_json=args.json, stdout=stdout, stderr=stderr
    )


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
