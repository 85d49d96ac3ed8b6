// The relay's chat page: keeps the conversation, sends it as `messages` to POST /, and renders
// the answer's tokens as they arrive from the relay's server-sent events. No build step.
"use strict";

const conversation = [];
const view = document.getElementById("conversation");
const errorLine = document.getElementById("error");
const form = document.getElementById("ask");
const prompt = document.getElementById("prompt");
const sendButton = document.getElementById("send");
const stopButton = document.getElementById("stop");
const keyForm = document.getElementById("key");
const keyInput = document.getElementById("api-key");
// A relay that takes API keys answers 401 without one: the page then asks for a key and keeps it
// in this tab's sessionStorage only (gone when the tab closes; never in localStorage or a cookie).
const KEY_ITEM = "jumpstream.apiKey";
let running = null;

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

function bubble(role, text) {
  const element = document.createElement("div");
  element.className = `message ${role}`;
  element.textContent = text;
  view.appendChild(element);
  return element;
}

function showError(message) {
  errorLine.textContent = message;
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
  const messages = [];
  const system = document.getElementById("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  conversation.push({ role: "user", content: text });
  messages.push(...conversation);
  bubble("user", text);
  const answer = bubble("assistant", "");
  answer.dataset.state = "streaming";
  const controller = new AbortController();
  running = controller;
  sendButton.disabled = true;
  stopButton.disabled = false;
  const maxNewTokens = Number(document.getElementById("max-new-tokens").value) || 256;
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
        if (event.name === "token") answer.textContent += event.data.text;
        else if (event.name === "error") throw new Error(`${event.data.error} (${event.data.type})`);
        else if (event.name === "done") ended = true;
      }
    }
    if (!ended) throw new Error("The answer broke off before it was complete.");
    answer.dataset.state = "done";
    conversation.push({ role: "assistant", content: answer.textContent });
  } catch (error) {
    if (controller.signal.aborted) {
      answer.dataset.state = "stopped";
      conversation.push({ role: "assistant", content: answer.textContent });
    } else {
      answer.dataset.state = "failed";
      conversation.pop(); // the question was not answered: ask it again or change it
      showError(error.message);
    }
  } finally {
    running = null;
    sendButton.disabled = false;
    stopButton.disabled = true;
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = prompt.value.trim();
  if (!text || running) return;
  prompt.value = "";
  ask(text);
});

prompt.addEventListener("keydown", (event) => {
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
