// The relay's chat page: keeps the conversation, sends it as `messages` to POST /, and renders
// the answer as Markdown while its tokens arrive from the relay's server-sent events. No build
// step: marked (Markdown to HTML) and DOMPurify (HTML sanitiser) are vendored beside this file.
"use strict";

const view = document.getElementById("conversation");
const toNewest = document.getElementById("to-newest");
const errorLine = document.getElementById("error");
const form = document.getElementById("ask");
const prompt = document.getElementById("prompt");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const newChatButton = document.getElementById("new-chat");
const systemInput = document.getElementById("system");
const maxNewTokensInput = document.getElementById("max-new-tokens");
const keyForm = document.getElementById("key");
const keyInput = document.getElementById("api-key");
// A relay that takes API keys answers 401 without one: the page then asks for a key and keeps it
// in this tab's sessionStorage only (gone when the tab closes; never in localStorage or a cookie).
const KEY_ITEM = "jumpstream.apiKey";
// The settings (never the conversation, never the key) survive a reload in localStorage.
const SETTINGS_ITEM = "jumpstream.chatSettings";
const DEFAULT_MAX_NEW_TOKENS = 256;
// Within this many pixels of the bottom, the reader is following the newest text.
const NEAR_BOTTOM_PX = 24;
const COPIED_MS = 1500;

// The conversation sent with the next question: answered questions and their answers only.
let chat = { messages: [] };
let running = null;
let following = true;
let lastScrollTop = 0;

// --- Markdown, safely ---------------------------------------------------------------------------
// The model's text is Markdown; HTML the model writes is shown as text, never parsed, and what
// marked makes is sanitised by DOMPurify to the tags Markdown needs before it reaches the page.
// The CSP's Trusted Types let no HTML into the DOM but DOMPurify's.

function escapeHtml(text) {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

const markdown = new marked.Marked({
  gfm: true,
  renderer: {
    html: ({ text, block }) => (block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text)),
    // Images would load from wherever the model says (and the CSP refuses them): their words only.
    image: ({ text }) => escapeHtml(text ? `[image: ${text}]` : "[image]"),
    checkbox: ({ checked }) => (checked ? "\u2611 " : "\u2610 "),
  },
});

const SANITISE = {
  ALLOWED_TAGS: [
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "li", "ol", "p", "pre", "strong", "table", "tbody", "td", "th", "thead", "tr", "ul",
  ],
  ALLOWED_ATTR: ["href", "title", "class", "start", "align"],
  RETURN_TRUSTED_TYPE: true,
};
// Links open in a new tab, so following one never loses the conversation.
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

function renderMarkdown(element, text) {
  element.innerHTML = DOMPurify.sanitize(markdown.parse(text), SANITISE);
  // Each code block gets a bar above it: its language, if the model named one, and a copy button.
  for (const pre of element.querySelectorAll("pre")) {
    const block = document.createElement("div");
    block.className = "code-block";
    const bar = document.createElement("div");
    bar.className = "code-bar";
    const language = document.createElement("span");
    const named = [...(pre.firstElementChild?.classList ?? [])].find((c) => c.startsWith("language-"));
    language.textContent = named ? named.slice("language-".length) : "";
    bar.append(language, copyButton("Copy code", () => pre.textContent));
    pre.replaceWith(block);
    block.append(bar, pre);
  }
}

// --- Copying --------------------------------------------------------------------------------------

function copyButton(label, text) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text());
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => (button.textContent = label), COPIED_MS);
  });
  return button;
}

// --- Following the newest text ------------------------------------------------------------------

function nearBottom() {
  return view.scrollHeight - view.scrollTop - view.clientHeight <= NEAR_BOTTOM_PX;
}

// The reader scrolling up stops the following; back at the bottom, it follows again. The page's
// own scrolling only ever goes down, so it never counts as the reader's.
view.addEventListener("scroll", () => {
  if (nearBottom()) following = true;
  else if (view.scrollTop < lastScrollTop) following = false;
  lastScrollTop = view.scrollTop;
  toNewest.hidden = following;
});

function follow() {
  if (following) view.scrollTop = view.scrollHeight;
  else toNewest.hidden = false;
}

function jumpToNewest() {
  following = true;
  toNewest.hidden = true;
  view.scrollTop = view.scrollHeight;
}

toNewest.addEventListener("click", jumpToNewest);

// --- The conversation on screen -----------------------------------------------------------------

function bubble(role) {
  const element = document.createElement("article");
  element.className = `message ${role}`;
  const content = document.createElement("div");
  content.className = "content";
  const meta = document.createElement("footer");
  meta.className = "meta";
  const status = document.createElement("span");
  status.className = "status";
  meta.append(status);
  element.append(content, meta);
  view.append(element);
  return { element, content, status, meta };
}

function questionBubble(text) {
  const question = bubble("user");
  question.content.textContent = text;
  return question;
}

// An answer: its Markdown source (what is copied and sent back as history) and its rendering,
// redrawn at most once a frame while tokens arrive.
function answerBubble() {
  const answer = bubble("assistant");
  answer.text = "";
  answer.frame = 0;
  answer.element.dataset.state = "streaming";
  answer.meta.append(copyButton("Copy", () => answer.text));
  answer.add = (text) => {
    answer.text += text;
    if (!answer.frame) answer.frame = requestAnimationFrame(answer.draw);
  };
  answer.draw = () => {
    cancelAnimationFrame(answer.frame);
    answer.frame = 0;
    renderMarkdown(answer.content, answer.text);
    follow();
  };
  return answer;
}

function showError(message) {
  errorLine.textContent = message;
}

// --- Settings -----------------------------------------------------------------------------------

function loadSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem(SETTINGS_ITEM) || "{}");
    if (typeof saved.system === "string") systemInput.value = saved.system;
    if (typeof saved.maxNewTokens === "string") maxNewTokensInput.value = saved.maxNewTokens;
  } catch {
    localStorage.removeItem(SETTINGS_ITEM);
  }
}

function saveSettings() {
  const settings = { system: systemInput.value, maxNewTokens: maxNewTokensInput.value };
  localStorage.setItem(SETTINGS_ITEM, JSON.stringify(settings));
}

// --- Talking to the relay -----------------------------------------------------------------------

function authorization() {
  const key = sessionStorage.getItem(KEY_ITEM);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function askForKey(question) {
  sessionStorage.removeItem(KEY_ITEM);
  keyForm.hidden = false;
  keyForm.dataset.question = question;
  keyInput.focus();
}

// One event of the relay's SSE: an `event:` line and one JSON `data:` line.
function parseEvent(block) {
  let name = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) name = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trimStart();
  }
  return { name, data: data ? JSON.parse(data) : null };
}

async function refusal(response) {
  try {
    const body = await response.json();
    return `${body.error} (${body.type}, HTTP ${response.status})`;
  } catch {
    return `HTTP ${response.status}`;
  }
}

async function ask(text) {
  showError("");
  const thread = chat; // a new chat started meanwhile leaves this one behind
  const messages = [];
  const system = systemInput.value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push(...thread.messages, { role: "user", content: text });
  const question = questionBubble(text);
  const answer = answerBubble();
  jumpToNewest();
  const controller = new AbortController();
  running = controller;
  sendButton.disabled = true;
  stopButton.disabled = false;
  const maxNewTokens = Number(maxNewTokensInput.value) || DEFAULT_MAX_NEW_TOKENS;
  try {
    const response = await fetch("/", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "text/event-stream",
        ...authorization(),
      },
      body: JSON.stringify({ messages, parameters: { max_new_tokens: maxNewTokens } }),
      signal: controller.signal,
    });
    if (response.status === 401) askForKey(text);
    if (!response.ok) throw new Error(await refusal(response));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    let ended = false;
    while (!ended) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffered.indexOf("\n\n")) >= 0) {
        const event = parseEvent(buffered.slice(0, cut));
        buffered = buffered.slice(cut + 2);
        if (event.name === "token") answer.add(event.data.text);
        else if (event.name === "error") throw new Error(`${event.data.error} (${event.data.type})`);
        else if (event.name === "done") ended = true;
      }
    }
    if (!ended) throw new Error("The answer broke off before it was complete.");
    answer.draw();
    answer.element.dataset.state = "done";
    thread.messages.push({ role: "user", content: text }, { role: "assistant", content: answer.text });
  } catch (error) {
    answer.draw();
    if (controller.signal.aborted) {
      // Stopped by the reader: what they saw is what the model said, and stays in the conversation.
      answer.element.dataset.state = "stopped";
      answer.status.textContent = "Stopped";
      thread.messages.push({ role: "user", content: text }, { role: "assistant", content: answer.text });
    } else {
      // Not an answer: neither the question nor this is sent again; the question is ready to retry.
      question.element.dataset.state = "failed";
      answer.element.dataset.state = "failed";
      answer.status.textContent = "Failed, not part of the conversation: the question is back below";
      showError(error.message);
      if (thread === chat && !prompt.value) prompt.value = text;
    }
  } finally {
    if (running === controller) {
      running = null;
      sendButton.disabled = false;
      stopButton.disabled = true;
    }
  }
}

function newChat() {
  if (running) running.abort();
  chat = { messages: [] };
  view.replaceChildren();
  showError("");
  jumpToNewest();
  prompt.focus();
}

// --- Wiring -------------------------------------------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = prompt.value.trim();
  if (!text || running) return;
  prompt.value = "";
  ask(text);
});

prompt.addEventListener("keydown", (event) => {
  // Enter that confirms an input method's conversion (Japanese, Chinese, Korean) is not a send;
  // Safari reports it as keyCode 229 after compositionend, Chromium and Firefox as isComposing.
  if (event.isComposing || event.keyCode === 229) return;
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    form.requestSubmit();
  }
});

keyForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const key = keyInput.value.trim();
  if (!key) return;
  sessionStorage.setItem(KEY_ITEM, key);
  keyInput.value = "";
  keyForm.hidden = true;
  showError("");
  // The question the key was missing for, ready to send again.
  if (!prompt.value) prompt.value = keyForm.dataset.question || "";
  prompt.focus();
});

stopButton.addEventListener("click", () => {
  if (running) running.abort();
});

newChatButton.addEventListener("click", newChat);
systemInput.addEventListener("input", saveSettings);
maxNewTokensInput.addEventListener("input", saveSettings);
loadSettings();
