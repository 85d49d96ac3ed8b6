"""``python -m jumpstream``: see :mod:`jumpstream.cli`."""

from __future__ import annotations

import os
import sys

from jumpstream.cli import main


def _run() -> int:
    status = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of stdout left (`... | head`): point stdout at /dev/null so the
        # interpreter's own flush at exit does not report the same broken pipe again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    sys.exit(_run())
