"""OpenAI's chat-completions, completions and Responses APIs, translated to and from the relay's.

Tools built on the `openai` package, LangChain and chat UIs speak this API. The pinned TGI
containers do not (JumpStart's settings leave TGI's Messages API off, and TGI 1.4 has none), and
an LMI or vLLM model's answer must still come through the relay's stream contract, so the relay
translates: a request becomes the relay's own (TGI's `inputs` and `parameters`, or a chat's
`messages` for an engine that lays them out; requests.py), which engines.py writes in the model's
engine's terms; the answer's pieces, the same events whatever the engine, become OpenAI's
objects (writers.py), and every refusal takes OpenAI's error
shape (errors.py). The Responses API's text subset is a chat under other names: its body becomes
a chat request (response_requests.py), its answer the API's events or object
(response_writers.py). app.py serves them as a sub-application mounted on /v1, with its own
exception handlers: under /v1 the dialect is OpenAI's because that is where the routes live.
"""
