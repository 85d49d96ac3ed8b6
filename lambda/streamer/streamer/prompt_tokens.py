"""Prompt tokens where the engine does not count them: the model's own tokenizer, loaded once.

TGI reports a prompt's length in tokens (`input_length`) only since 2.3, and six of the catalog's
models run older versions; LMI's rolling batch reports none; usage per API key and OpenAI's
`usage.prompt_tokens` still need the number. (A chat the engine lays out with the model's own
template is never counted here: the template's tokens are the engine's to know.) The stack
points TOKENIZER_URI at the model's `tokenizer.json` in the very artifact the endpoint loads,
and `PromptCounter` counts with Hugging Face's `tokenizers` as TGI's router does (the model's
special tokens added, `truncate` applied).

The file is read at the first request that needs it, never at start (a SnapStart snapshot holds no
credentials), in a thread of its own however many requests wait for it (shared_call.py); a long
prompt is counted in a worker thread: parsing megabytes of vocabulary or encoding a long prompt
must not hold up the streams on the event loop. A tokenizer that cannot be loaded is logged
and tried again after a minute; meanwhile the count is unknown (None), never guessed.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Final

import anyio.to_thread
from aws_lambda_powertools import Logger

from .shared_call import SharedCall

__all__ = ["PromptCounter"]

# After a failed load, requests go on without counts for this long before the next attempt.
_RETRY_SECONDS: Final = 60.0
# How many prompts' counts are remembered (the oldest is forgotten first).
_REMEMBERED_PROMPTS: Final = 64
# A prompt this short is counted on the event loop: encoding it takes tens of microseconds, less
# than the trip to a worker thread and back.
_INLINE_CHARS: Final = 4096


class PromptCounter:
    """Counts a prompt's tokens with the model's tokenizer."""

    def __init__(self, uri: str, *, region: str, logger: Logger) -> None:
        self._uri = uri
        self._region = region
        self._logger = logger
        self._tokenizer: Any = None
        self._failed_at: float | None = None
        self._loading = SharedCall(self._load_kept, name="tokenizer-load")
        # The last prompts' counts: a request's prompt is counted before the call (the room its
        # answer has, answer_room.py) and for its usage, by the same counter.
        self._counted: dict[str, int] = {}

    def counting(self, text: str, *, truncate: int | None = None) -> asyncio.Future[int | None]:
        """The count of `count`, under way alongside the generation: a short prompt with the
        tokenizer loaded is counted in a callback on the loop's next turn (once the call to
        SageMaker has gone out), without the task `count` would need; the rest in a task."""
        loop = asyncio.get_running_loop()
        tokenizer = self._tokenizer
        if tokenizer is None or len(text) > _INLINE_CHARS:
            return loop.create_task(self.count(text, truncate=truncate))
        future: asyncio.Future[int | None] = loop.create_future()
        loop.call_soon(self._count_into, future, tokenizer, text, truncate)
        return future

    def _count_into(
        self, future: asyncio.Future[int | None], tokenizer: Any, text: str, truncate: int | None
    ) -> None:
        if future.done():
            return  # given up on before its turn came
        future.set_result(_truncated(self._length_now(tokenizer, text), truncate))

    async def count(self, text: str, *, truncate: int | None = None) -> int | None:
        """The prompt's length in tokens as TGI would report it; None if the tokenizer is not
        to be had or fails on the prompt (logged)."""
        length = self._counted.get(text)
        if length is None:
            tokenizer = self._tokenizer
            if tokenizer is None:
                tokenizer = await self._loaded()
                if tokenizer is None:
                    return None
            if len(text) <= _INLINE_CHARS:
                length = self._length_now(tokenizer, text)
            else:
                length = await anyio.to_thread.run_sync(self._measured, tokenizer, text)
                if length is not None:
                    self._remember(text, length)
        return _truncated(length, truncate)

    def _length_now(self, tokenizer: Any, text: str) -> int | None:
        """The prompt's length, remembered or counted here (on the event loop)."""
        length = self._counted.get(text)
        if length is None:
            length = self._measured(tokenizer, text)
            if length is not None:
                self._remember(text, length)
        return length

    def _measured(self, tokenizer: Any, text: str) -> int | None:
        """The prompt encoded; None, logged, where the tokenizer fails on it (a count is for
        usage and the log: it never fails a request)."""
        try:
            return _count(tokenizer, text)
        except Exception as error:
            self._logger.warning(
                "the prompt's tokens could not be counted", extra={"error_detail": repr(error)}
            )
            return None

    def _remember(self, text: str, length: int) -> None:
        """On the event loop only: the memory is not shared with worker threads."""
        if len(self._counted) >= _REMEMBERED_PROMPTS:
            del self._counted[next(iter(self._counted))]
        self._counted[text] = length

    async def _loaded(self) -> Any:
        """The tokenizer, loaded on first need by one thread for all who wait; None while a
        failed load is not yet to be tried again."""
        if self._tokenizer is not None:
            return self._tokenizer
        if self._failed_at is not None and time.monotonic() - self._failed_at < _RETRY_SECONDS:
            return None
        return await self._loading()

    def _load_kept(self) -> Any:
        """In the load's thread: the tokenizer, kept; or None, the failure logged and its time
        kept for the retry."""
        try:
            tokenizer = self._load()
        except Exception as error:
            self._failed_at = time.monotonic()
            self._logger.warning(
                "the model's tokenizer could not be loaded: prompt tokens are unknown",
                extra={"tokenizer_uri": self._uri, "error_detail": repr(error)},
            )
            return None
        self._tokenizer = tokenizer
        self._failed_at = None
        return tokenizer

    def _load(self) -> Any:
        from tokenizers import Tokenizer

        if self._uri.startswith("s3://"):
            import botocore.session

            bucket, _, key = self._uri.removeprefix("s3://").partition("/")
            client = botocore.session.get_session().create_client("s3", region_name=self._region)
            document = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        else:
            document = Path(self._uri).read_bytes()
        return Tokenizer.from_str(document.decode("utf-8"))


def _truncated(length: int | None, truncate: int | None) -> int | None:
    """What TGI reports for a prompt it truncated to its last `truncate` tokens."""
    return length if length is None or truncate is None else min(length, truncate)


def _count(tokenizer: Any, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=True).ids)
