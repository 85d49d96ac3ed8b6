"""One blocking call in one thread of its own, however many requests await it at once."""

from __future__ import annotations

import asyncio
import threading

import anyio
import pytest
from streamer.shared_call import SharedCall

WAITERS = 64


class Gated:
    """A blocking function that runs until the test opens its gate, and counts its runs and
    the threads alive while it ran."""

    def __init__(self, outcome: object) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.runs: list[str] = []
        self.alive_while_running: list[set[int | None]] = []
        self._outcome = outcome

    def __call__(self) -> object:
        self.runs.append(threading.current_thread().name)
        self.alive_while_running.append({thread.ident for thread in threading.enumerate()})
        self.started.set()
        self.gate.wait(timeout=10)
        if isinstance(self._outcome, BaseException):
            raise self._outcome
        return self._outcome


async def _open_once_started(function: Gated) -> None:
    """Let the run end once it started, the event loop turning meanwhile."""
    while not function.started.is_set():
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)  # every waiter is waiting by now
    function.gate.set()


def test_concurrent_callers_share_one_run_in_one_thread() -> None:
    function = Gated("the result")
    shared = SharedCall(function, name="the-run")
    alive_before = {thread.ident for thread in threading.enumerate()}

    async def run() -> list[object]:
        opening = asyncio.ensure_future(_open_once_started(function))
        results = await asyncio.gather(*(shared() for _ in range(WAITERS)))
        await opening
        return list(results)

    assert anyio.run(run) == ["the result"] * WAITERS
    assert function.runs == ["the-run"]
    (alive,) = function.alive_while_running
    assert len(alive - alive_before) == 1  # the run's own thread, and no other


def test_every_waiter_gets_the_runs_exception_and_the_next_call_runs_again() -> None:
    function = Gated(LookupError("no such thing"))
    shared = SharedCall(function, name="the-run")

    async def run() -> list[object]:
        opening = asyncio.ensure_future(_open_once_started(function))
        outcomes = await asyncio.gather(*(shared() for _ in range(8)), return_exceptions=True)
        await opening
        return list(outcomes)

    outcomes = anyio.run(run)
    assert [type(outcome) for outcome in outcomes] == [LookupError] * 8
    assert len(function.runs) == 1

    function.gate.clear()
    function.started.clear()
    with pytest.raises(LookupError):
        anyio.run(_one_call, shared, function)
    assert len(function.runs) == 2


async def _one_call(shared: SharedCall[object], function: Gated) -> object:
    opening = asyncio.ensure_future(_open_once_started(function))
    try:
        return await shared()
    finally:
        await opening


def test_a_waiter_given_up_on_leaves_the_run_to_the_others() -> None:
    function = Gated(42)
    shared = SharedCall(function, name="the-run")

    async def run() -> tuple[bool, int]:
        impatient = asyncio.ensure_future(shared())
        patient = asyncio.ensure_future(shared())
        while not function.started.is_set():
            await asyncio.sleep(0.005)
        impatient.cancel()
        await asyncio.sleep(0.01)
        function.gate.set()
        return impatient.cancelled(), await patient

    assert anyio.run(run) == (True, 42)
    assert len(function.runs) == 1


def test_a_call_after_the_run_ended_runs_the_function_again() -> None:
    function = Gated("again")
    function.gate.set()
    shared = SharedCall(function, name="the-run")
    assert anyio.run(shared.__call__) == "again"
    assert anyio.run(shared.__call__) == "again"
    assert len(function.runs) == 2


def test_a_thread_that_cannot_start_fails_its_caller_and_leaves_no_run_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No thread to be had (the process's limit): the caller hears it, and the next call runs
    anew rather than awaiting a run that never started."""
    function = Gated("at last")
    function.gate.set()
    shared = SharedCall(function, name="the-run")
    real_start = threading.Thread.start

    def no_thread(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", no_thread)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        anyio.run(shared.__call__)
    monkeypatch.setattr(threading.Thread, "start", real_start)

    async def next_call() -> object:
        with anyio.fail_after(5):  # not a wait for ever on the run that never started
            return await shared()

    assert anyio.run(next_call) == "at last"
    assert function.runs == ["the-run"]
