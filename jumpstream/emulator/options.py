"""The emulator's command-line options, each defined once: flag, setting, value type, help.

Three command lines carry them: the emulator's own (``python -m jumpstream.emulator``), the
``local`` and ``demo`` commands of ``python -m jumpstream`` (which pass them on), and the one
``jumpstream.local`` starts the emulator with. All three read them from here, so an option cannot
be spelled, typed or explained one way in one place and another way elsewhere. Each caller passes
its own defaults (the emulator's are :class:`~jumpstream.emulator.server.EmulatorSettings`'s) and
may give an option a flag of its own (``local --emulator-port``).

The options of ``SETTINGS`` are named (``dest``) after the field they fill, in ``EmulatorSettings``
and ``jumpstream.local.StackConfig`` alike.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from streamer import contract

from jumpstream import arguments
from jumpstream.emulator.model_facts import DEFAULT_ENGINE, serving_engine
from jumpstream.emulator.server import EmulatorSettings

__all__ = [
    "COLD_START",
    "ENDPOINT_NAME",
    "ENGINE",
    "FIRST_TOKEN_DELAY",
    "HOST",
    "INFERENCE_COMPONENT",
    "LOG_LEVEL",
    "MODEL_ID",
    "PORT",
    "SETTINGS",
    "TGI_URL",
    "TOKENS_PER_SECOND",
    "Option",
    "settings_problem",
]


def _float_text(value: Any) -> str:
    return repr(float(value))


def _engine(text: str) -> str:
    if text not in contract.ENGINES:
        raise argparse.ArgumentTypeError(
            f"unknown engine {text!r}; choose one of: {', '.join(contract.ENGINES)}"
        )
    return text


@dataclass(frozen=True, slots=True, kw_only=True)
class Option:
    """One ``--flag VALUE`` option of the emulator."""

    #: The setting it fills: the argparse ``dest`` and the settings' field name.
    dest: str
    flag: str
    type: Callable[[str], Any]
    metavar: str
    #: What it does; the default is appended by :meth:`add_to`, as each parser has its own.
    help: str
    #: The value that means "not given": a command line leaves the option out for it.
    absent: Any = None
    #: The help's words for a default of None (the option left to the emulator).
    when_absent: str | None = None
    #: How a command line spells a value.
    to_text: Callable[[Any], str] = str

    def add_to(
        self,
        parser: argparse.ArgumentParser,
        *,
        default: Any,
        flag: str | None = None,
        dest: str | None = None,
    ) -> None:
        """Add it to ``parser`` with this parser's ``default`` (and, if given, its own flag)."""
        parser.add_argument(
            flag or self.flag,
            dest=dest or self.dest,
            type=self.type,
            default=default,
            metavar=self.metavar,
            help=f"{self.help}{self._default_help(default)}",
        )

    def argv(self, value: Any) -> list[str]:
        """The words that pass ``value`` on a command line; none for the absent value."""
        return [] if value == self.absent else [self.flag, self.to_text(value)]

    def _default_help(self, default: Any) -> str:
        if default is None:
            return "" if self.when_absent is None else f" (default: {self.when_absent})"
        # %-formatted by argparse; %g shows 25.0 as 25.
        return (
            " (default: %(default)g)" if isinstance(default, float) else " (default: %(default)s)"
        )


_EMULATOR: Final = EmulatorSettings()

HOST: Final = Option(
    dest="host", flag="--host", type=str, metavar="HOST", help="the address to listen on"
)
PORT: Final = Option(
    dest="port",
    flag="--port",
    type=arguments.port,
    metavar="PORT",
    help="the emulator's port; 0 picks a free one",
)
LOG_LEVEL: Final = Option(
    dest="log_level", flag="--log-level", type=str, metavar="LEVEL", help="uvicorn's log level"
)
ENDPOINT_NAME: Final = Option(
    dest="endpoint_name",
    flag="--endpoint-name",
    type=str,
    metavar="NAME",
    help="the endpoint it serves; a call naming another is refused as SageMaker refuses it",
)
MODEL_ID: Final = Option(
    dest="model_id",
    flag="--model-id",
    type=str,
    metavar="ID",
    help="the JumpStart model the emulated endpoint pretends to run",
)
ENGINE: Final = Option(
    dest="engine",
    flag="--engine",
    type=_engine,
    metavar="|".join(contract.ENGINES),
    help="the server the emulated endpoint runs the model on, which decides its request "
    "bodies, streams and errors",
    when_absent="the model's, as the catalog says; tgi for a model it does not know",
)
TOKENS_PER_SECOND: Final = Option(
    dest="tokens_per_second",
    flag="--tokens-per-second",
    type=arguments.non_negative_float,
    metavar="N",
    help="the emulated model's pace; 0 is as fast as possible",
    to_text=_float_text,
)
FIRST_TOKEN_DELAY: Final = Option(
    dest="first_token_delay",
    flag="--first-token-delay",
    type=arguments.seconds,
    metavar="SECONDS",
    help="seconds before the first token",
    when_absent=f"the emulator's, {_EMULATOR.first_token_delay:g}",
    to_text=_float_text,
)
TGI_URL: Final = Option(
    dest="tgi_url",
    flag="--tgi-url",
    type=arguments.http_url,
    metavar="URL",
    help="forward to this real TGI server instead of the stand-in model",
)
INFERENCE_COMPONENT: Final = Option(
    dest="inference_component",
    flag="--inference-component",
    type=str,
    metavar="NAME",
    help="serve the model as this inference component (each call must name it)",
)
COLD_START: Final = Option(
    dest="cold_start",
    flag="--cold-start",
    type=arguments.seconds,
    metavar="SECONDS",
    help="with --inference-component: refuse with no capacity for this long after the first "
    "call, as a component scaled to zero does while a copy starts",
    # No cold start at all: nothing to pass.
    absent=0.0,
    to_text=_float_text,
)

#: The options that fill EmulatorSettings, in the order a command line passes them.
SETTINGS: Final = (
    ENDPOINT_NAME,
    MODEL_ID,
    ENGINE,
    TOKENS_PER_SECOND,
    FIRST_TOKEN_DELAY,
    TGI_URL,
    INFERENCE_COMPONENT,
    COLD_START,
)


def settings_problem(
    *,
    inference_component: str | None,
    cold_start: float,
    model_id: str | None = None,
    engine: str | None = None,
    tgi_url: str | None = None,
) -> str | None:
    """Why these settings cannot go together, or None."""
    if cold_start and inference_component is None:
        return f"{COLD_START.flag} needs {INFERENCE_COMPONENT.flag}: only components scale to zero"
    served_by = engine if model_id is None else serving_engine(model_id, engine)
    if tgi_url is not None and served_by not in (None, DEFAULT_ENGINE):
        return (
            f"{TGI_URL.flag} forwards to a TGI server, but the model is served by {served_by}: "
            f"leave out {TGI_URL.flag}, or give {ENGINE.flag} {DEFAULT_ENGINE}"
        )
    return None
