"""Canned paragraphs the stand-in model answers with, in English and Japanese.

Why canned: tests and demos need an answer that reads plausibly and is identical on every run
for the same prompt, without model weights. The topics match what this project is about so a
demo through the real relay looks sensible. MARKDOWN is what ``[[markdown]]`` answers: what a
chat page must render (a code block with a line wider than a phone) and must never run (HTML and
a ``javascript:`` link written by the model).
"""

from __future__ import annotations

ENGLISH: tuple[str, ...] = (
    "Streaming lets a client show the first words of an answer while the rest is still being "
    "generated, so the wait feels much shorter than it really is.",
    "A SageMaker endpoint sends the answer back in small binary frames, and each frame carries "
    "a few bytes of the text that the model produced.",
    "To keep costs under control, cap the number of new tokens, set a timeout on every "
    "request, and scale the endpoint down when nobody is using it.",
    "Large language models predict one token at a time, and every token depends on the prompt "
    "and on all of the tokens that came before it.",
    "If a stream stops early, tell the user clearly instead of pretending that the answer is "
    "complete, and let them try again.",
)

JAPANESE: tuple[str, ...] = (
    "ストリーミングを使うと、回答の最初の言葉をすぐに表示できるので、待ち時間が短く感じられます。",
    "SageMakerのエンドポイントは、モデルが生成した文章を小さなフレームに分けて返します。",
    "費用を抑えるには、新しいトークンの数に上限を設け、使わない時間は台数を減らしましょう。",
    "大規模言語モデルは、プロンプトとそれまでの出力をもとに、次の単語を一つずつ予測します。",
    "途中で止まったときは、回答が完全であるかのように見せず、利用者にはっきり伝えてください。",
)

MARKDOWN = """ Here is a function that streams an answer and prints each part as it arrives:

```python
def stream(client, prompt):
    for part in client.generate(prompt, stream=True):
        print(part.text, end="", flush=True)  # a line wider than a phone's screen, on purpose
```

Call it as `stream(client, "Hello")`. Things to keep in mind:

- **Timeouts**: set one on every request.
- *Retries*: see [the guide](javascript:document.title='link-ran').

| Setting | Value |
| --- | --- |
| max_new_tokens | 256 |

A model can write HTML as well, which a page must show as text and never run: <img src=x \
onerror="document.title='img-ran'"> and

<script>document.title='script-ran'</script>
"""
