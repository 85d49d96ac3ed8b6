"""Failures SageMaker itself reports once a reply has begun, as each invoke API reports them.

Why apart from the engines: these are not the container's words but the service's, the same
whichever engine runs. InvokeEndpointWithResponseStream puts them in the event stream as modelled
exceptions (botocore raises them mid-iteration); InvokeEndpoint, which answers only once the
container is done, turns them into the HTTP error it answers with instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from jumpstream.emulator import errors, eventstream
from jumpstream.emulator.errors import SageMakerError

__all__ = [
    "INTERNAL_STREAM_MESSAGE",
    "STREAM_BROKEN_MESSAGE",
    "TIMEOUT_MESSAGE",
    "StreamFault",
]

STREAM_BROKEN_MESSAGE: Final = (
    "The stream from the model container was broken: its connection was reset or closed "
    "before the response was complete."
)
TIMEOUT_MESSAGE: Final = (
    "The model container did not finish sending the response within the invocation timeout."
)
INTERNAL_STREAM_MESSAGE: Final = (
    "An internal error occurred while streaming the response. Try again."
)
#: What InvokeEndpoint says when the container took too long (SageMaker's own words).
INVOKE_TIMEOUT_MESSAGE: Final = (
    "Your invocation timed out while waiting for a response from container primary. Review the "
    "latency metrics for each container in Amazon CloudWatch, resolve the issue, and try again."
)
#: InvokeEndpoint's status for a container that gave no HTTP answer at all.
_NO_ANSWER_STATUS: Final = 0


@dataclass(frozen=True, slots=True)
class StreamFault:
    """SageMaker's failure of a reply under way: ``stream_broken`` (the container's connection
    went), ``timeout`` (the invocation ran out of time) or ``internal_stream`` (its own)."""

    kind: str

    def event(self) -> bytes:
        """The event-stream exception message InvokeEndpointWithResponseStream ends with."""
        if self.kind == "stream_broken":
            return eventstream.model_stream_error(STREAM_BROKEN_MESSAGE, eventstream.STREAM_BROKEN)
        if self.kind == "timeout":
            return eventstream.model_stream_error(
                TIMEOUT_MESSAGE, eventstream.MODEL_INVOCATION_TIME_EXCEEDED
            )
        return eventstream.internal_stream_failure(INTERNAL_STREAM_MESSAGE)

    def error(self, endpoint_name: str) -> SageMakerError:
        """The HTTP error InvokeEndpoint answers instead of the container's reply."""
        if self.kind == "stream_broken":
            return errors.model_error(endpoint_name, _NO_ANSWER_STATUS, STREAM_BROKEN_MESSAGE)
        if self.kind == "timeout":
            return errors.model_error(endpoint_name, _NO_ANSWER_STATUS, INVOKE_TIMEOUT_MESSAGE)
        return errors.internal_failure()
