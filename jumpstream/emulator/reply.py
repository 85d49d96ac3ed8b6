"""What an engine answers a request with, whichever engine it is: a reply to play, or an error.

Why one shape for every engine: the server, the pacing and the faults (playback.py) are the same
for TGI, LMI and vLLM; only the bytes differ. Each engine module turns a request body into a
:class:`Reply` (its content type, its emissions, how it reports its own failures and how it
keeps a quiet stream alive) or a :class:`ContainerError` (the HTTP error the container answers,
which SageMaker wraps in a ModelError).
"""

from __future__ import annotations

from dataclasses import dataclass

from jumpstream.emulator.playback import Emission, EngineFailure

__all__ = ["ContainerError", "NotEmulated", "Reply"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """The container's 200 answer, to be played out."""

    #: The container's Content-Type, which SageMaker passes on.
    content_type: str
    emissions: tuple[Emission, ...]
    #: True when the engine streams token by token; False for one document sent once the whole
    #: generation is done (a body that did not ask to stream).
    streamed: bool
    #: The text the model was given (what ``[[split:random]]`` seeds its sizes with).
    prompt: str
    failure: EngineFailure
    keepalive: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerError:
    """The container refused or failed before answering: its HTTP status and body."""

    status: int
    body: str


class NotEmulated(ValueError):
    """A request the real engine would take but the emulator does not emulate (say, a batch of
    prompts): refused as the emulator's own usage error, never as the engine's."""
