"""How a command line reads its values: argparse types that refuse bad input with one clear line.

One place for them, because two command lines read the same kinds of value: ``python -m
jumpstream`` and the emulator's own ``python -m jumpstream.emulator``. Each raises
``argparse.ArgumentTypeError``, which argparse turns into ``error: argument --flag: ...`` and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import math

__all__ = [
    "finite_float",
    "http_url",
    "non_negative_float",
    "port",
    "positive_float",
    "positive_int",
    "seconds",
    "whole_number",
]


def finite_float(text: str) -> float:
    """A number that is neither NaN nor infinite."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0 (got {text})")
    return value


def non_negative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {text})")
    return value


def seconds(text: str) -> float:
    """A duration: 0 or more seconds."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds (got {text})")
    return value


def whole_number(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def positive_int(text: str) -> int:
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {text})")
    return value


def port(text: str) -> int:
    """A TCP port; 0 asks the system for a free one."""
    value = whole_number(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (got {text})")
    return value


def http_url(text: str) -> str:
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL (got {text!r})")
    return text
