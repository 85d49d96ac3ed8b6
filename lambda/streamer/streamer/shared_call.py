"""One blocking call in a thread of its own, however many requests await it at once.

What a cold process does once and every request needs (find the credentials, build the TLS
context, read the tokenizer), awaited by each request in a worker thread of its own, would make a
burst of requests at a cold start, such as a Managed Instances environment or a local relay takes,
hold one of anyio's forty worker threads per request, each doing the same work or blocked on the
same lock, while every other call to a worker thread waited behind them. A `SharedCall` runs its
function once at a time, in one thread of its own; every caller that comes while it runs awaits
that run's outcome, its result or its exception. A call after the run ended runs the function
again: keeping the result is the function's business, before it returns (the run is over for new
callers as soon as it returns, while its waiters may not have resumed yet).

A concurrent future, not a task: a waiter given up on (cancelled) leaves the run going for the
others, and a run belongs to no event loop in particular.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["SharedCall"]

_T = TypeVar("_T")


class SharedCall(Generic[_T]):
    """`await shared()`: `function()` in a thread named `name`, shared by concurrent callers."""

    __slots__ = ("_function", "_name", "_running")

    def __init__(self, function: Callable[[], _T], *, name: str) -> None:
        self._function = function
        self._name = name
        self._running: concurrent.futures.Future[_T] | None = None

    async def __call__(self) -> _T:
        running = self._running
        if running is None:
            running = self._running = concurrent.futures.Future()
            running.set_running_or_notify_cancel()  # from now on no waiter can cancel it
            # The first caller's context goes with the run, as anyio's worker threads carry it:
            # what the function logs carries that request's keys.
            context = contextvars.copy_context()
            thread = threading.Thread(
                target=context.run, args=(self._run, running), name=self._name, daemon=True
            )
            try:
                thread.start()
            except BaseException:
                # No thread to be had: no run for anyone to await. No one else holds `running`
                # yet (nothing was awaited since it was made), so it needs no outcome.
                self._running = None
                raise
        return await asyncio.wrap_future(running)

    def _run(self, running: concurrent.futures.Future[_T]) -> None:
        try:
            result = self._function()
        except BaseException as error:
            self._running = None  # before the waiters hear: any caller from then on runs anew
            running.set_exception(error)
        else:
            self._running = None
            running.set_result(result)
