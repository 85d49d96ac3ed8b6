"""OpenAI's chat-completions and completions API, translated to and from TGI's native one.

Tools built on the `openai` package, LangChain and chat UIs speak this API. The pinned TGI
containers do not (JumpStart's settings leave TGI's Messages API off, and TGI 1.4 has none), so
the relay translates: a request becomes TGI's `inputs` and `parameters` (requests.py), the
answer's pieces become OpenAI's objects (writers.py), and every refusal takes OpenAI's error
shape (errors.py). app.py serves them as a sub-application mounted on /v1, with its own
exception handlers: under /v1 the dialect is OpenAI's because that is where the routes live.
"""
