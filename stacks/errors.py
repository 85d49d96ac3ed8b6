"""The one error type a user should see from synthesis: a wrong setting, said in one line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A bad environment, model, region, instance type or other setting.

    `app.py` prints it as a single line and exits non-zero, so the first thing a user reads is what
    to change, not a jsii stack trace.
    """


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """ " (did you mean X?)" for the choice closest to a mistyped `value`, else "". An instance
    type without its "ml." is the commonest slip, so that is tried first."""
    options = list(choices)
    if f"ml.{value}" in options:
        return f" (did you mean ml.{value}?)"
    close = difflib.get_close_matches(value, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
