"""A local SageMaker runtime that streams like a TGI, LMI or vLLM endpoint, for tests and demos
without AWS.

It speaks the real ``InvokeEndpointWithResponseStream`` and ``InvokeEndpoint`` wire protocols
(event-stream framing, rest-json errors), so the real boto3 works against it unchanged::

    python -m jumpstream.emulator --port 8081 [--model-id ID] [--engine tgi|lmi|vllm]
    AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=http://127.0.0.1:8081 \\
    AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local AWS_REGION=us-east-1 python ...

Behind it is a deterministic stand-in model (or, with ``--tgi-url``, a real TGI server). The
engine is the model's, as the catalog says (``--engine`` chooses another), and decides every
byte (engine_tgi.py, engine_lmi.py, engine_vllm.py):

- ``tgi``: ``{"inputs", "parameters", "stream": true}`` streams TGI's server-sent events; a body
  without top-level ``"stream": true`` gets one PayloadPart holding ``[{"generated_text": ...}]``.
- ``lmi`` (DJL Serving's rolling batch): ``inputs`` streams JSON lines of token objects, the last
  with ``generated_text`` and ``details``; OpenAI ``messages`` stream JSON lines of
  ``chat.completion.chunk`` with LMI's finish words; no usage chunk, no ``[DONE]``.
- ``vllm`` (AWS's vLLM container): ``prompt`` streams OpenAI ``text_completion`` chunks,
  ``messages`` ``chat.completion.chunk``s, as server-sent events, then a usage chunk when
  ``stream_options.include_usage``, then ``data: [DONE]``; ``inputs`` is refused (400).

InvokeEndpoint answers the same bodies once the container is done, with the whole reply.

Control API: ``GET /_emulator/health``; ``GET /_emulator/streams`` lists every stream served,
``{"id", "state": "open"|"completed"|"disconnected", "tokens_sent", "held"}`` (``id`` is the
``x-amzn-RequestId``); ``POST /_emulator/release`` releases every held stream.

Directives, written anywhere in the prompt (``inputs``, ``prompt``, or the contents of
``messages``) and stripped before the model sees it (combinable; N counts tokens already sent,
default 0; an N past the end acts before the last token):

- ``[[fault:KIND]]`` / ``[[fault:KIND@N]]``. Before the stream, as HTTP errors (N ignored):
  ``throttling`` (400 ThrottlingException), ``unavailable`` (503 ServiceUnavailable),
  ``model_error`` (424 ModelError with OriginalStatusCode / OriginalMessage / LogStreamArn: the
  engine's own failure, TGI's 500, LMI's 424 "invoke handler failure", vLLM's 500),
  ``internal_failure`` (500 InternalFailure), ``no_capacity`` (400 ValidationError "Inference
  Component has no capacity ..."). Inside the stream, after N tokens: ``validation``,
  ``overloaded``, ``generation``, each in the engine's shape (TGI: an error event with that
  ``error_type``; LMI: its error line, token id -1 and ``finish_reason`` "error", with
  ``"error": {"error_code": 400 | 429, ...}`` or, for a failed generation, the bare message;
  vLLM: ``data: {"error": {...}}`` with code 400, 503 or 500, then ``data: [DONE]``; a body that
  does not stream gets them as a ModelError instead), ``stream_broken`` (ModelStreamError,
  StreamBroken), ``timeout`` (ModelStreamError, ModelInvocationTimeExceeded),
  ``internal_stream`` (InternalStreamFailure), ``truncate`` (the stream ends without its final
  event), ``stall`` (nothing more is sent; the stream stays open until the client leaves).
  InvokeEndpoint answers ``timeout`` and ``stream_broken`` with a ModelError (original status 0)
  and ``internal_stream`` with a 500 InternalFailure.
- ``[[hold@N]]``: after N tokens, wait for ``POST /_emulator/release``.
- ``[[split:K]]``: PayloadParts of exactly K bytes, cut across events and UTF-8 characters;
  ``[[split:random]]``: sizes 1-40 bytes, pseudo-random but fixed for a prompt.
- ``[[keepalive]]``: a keep-alive before the first token and every 4 tokens (TGI's and vLLM's
  ``:`` comment; a blank line between LMI's JSON lines).
- ``[[nospace]]``: ``data:{...}`` as TGI <= 2.0 wrote it (TGI, vLLM). ``[[crlf]]``: ``\\r\\n``
  line endings.
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
