"""The one error type a user should see from synthesis: a wrong setting, said in one line."""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad environment, model, region, instance type or other setting.

    `app.py` prints it as a single line and exits non-zero, so the first thing a user reads is what
    to change, not a jsii stack trace.
    """
