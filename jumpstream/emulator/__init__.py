"""A local SageMaker runtime that streams like a TGI endpoint, for tests and demos without AWS.

It speaks the real ``InvokeEndpointWithResponseStream`` wire protocol (event-stream framing,
rest-json errors), so the real boto3 works against it unchanged::

    python -m jumpstream.emulator --port 8081
    AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8081 \\
    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 python ...

Behind it is a deterministic stand-in model (or, with ``--tgi-url``, a real TGI server). A body
without top-level ``"stream": true`` gets one PayloadPart holding ``[{"generated_text": ...}]``,
as TGI does.

Control API: ``GET /_emulator/health``; ``GET /_emulator/streams`` lists every stream served,
``{"id", "state": "open"|"completed"|"disconnected", "tokens_sent", "held"}`` (``id`` is the
``x-amzn-RequestId``); ``POST /_emulator/release`` releases every held stream.

Directives, written anywhere in ``inputs`` and stripped before the model sees the prompt
(combinable; N counts tokens already sent, default 0; an N past the end acts before the final
event):

- ``[[fault:KIND]]`` / ``[[fault:KIND@N]]``. Before the stream, as HTTP errors (N ignored):
  ``throttling`` (400 ThrottlingException), ``unavailable`` (503 ServiceUnavailable),
  ``model_error`` (424 ModelError with OriginalStatusCode / OriginalMessage / LogStreamArn),
  ``internal_failure`` (500 InternalFailure), ``no_capacity`` (400 ValidationError "Inference
  Component has no capacity ..."). Inside the stream, after N tokens: ``validation``,
  ``overloaded``, ``generation`` (TGI error events with that ``error_type``; a non-streaming
  body gets them as a 424 ModelError instead), ``stream_broken`` (ModelStreamError,
  StreamBroken), ``timeout`` (ModelStreamError, ModelInvocationTimeExceeded),
  ``internal_stream`` (InternalStreamFailure), ``truncate`` (the stream ends without its final
  event), ``stall`` (nothing more is sent; the stream stays open until the client leaves).
- ``[[hold@N]]``: after N tokens, wait for ``POST /_emulator/release``.
- ``[[split:K]]``: PayloadParts of exactly K bytes, cut across events and UTF-8 characters;
  ``[[split:random]]``: sizes 1-40 bytes, pseudo-random but fixed for a prompt.
- ``[[keepalive]]``: TGI's ``:`` keep-alive comment before the first token and every 4 tokens.
- ``[[nospace]]``: ``data:{...}`` as TGI <= 2.0 wrote it. ``[[crlf]]``: ``\\r\\n`` line endings.
- ``[[length:N]]``: the model's natural answer is exactly N tokens before its EOS token.
- ``[[markdown]]``: the answer is ``answers.MARKDOWN`` whatever the prompt (a Markdown sample with
  a code block, a ``javascript:`` link, and raw ``<img onerror>`` / ``<script>`` HTML that a page
  must show as text and never run), cut at N tokens by ``[[length:N]]``.

A malformed directive (``[[fault:nonsense]]``) is refused with a 400 ValidationError whose
message starts with ``jumpstream emulator:``; bracketed text with any other name is left alone.
"""

from __future__ import annotations

from jumpstream.emulator.server import EmulatorSettings, create_app

__all__ = ["EmulatorSettings", "create_app"]
