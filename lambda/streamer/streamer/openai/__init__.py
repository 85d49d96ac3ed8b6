"""OpenAI's chat-completions, completions and Responses APIs, translated to and from TGI's.

Tools built on the `openai` package, LangChain and chat UIs speak this API. The pinned TGI
containers do not (JumpStart's settings leave TGI's Messages API off, and TGI 1.4 has none), so
the relay translates: a request becomes TGI's `inputs` and `parameters` (requests.py), the
answer's pieces become OpenAI's objects (writers.py), and every refusal takes OpenAI's error
shape (errors.py). The Responses API's text subset is a chat under other names: its body becomes
a chat request (response_requests.py), its answer the API's events or object
(response_writers.py). app.py serves them as a sub-application mounted on /v1, with its own
exception handlers: under /v1 the dialect is OpenAI's because that is where the routes live.
"""
