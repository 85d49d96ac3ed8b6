// The Vercel AI SDK against the relay: `openai(model)` (the Responses API, the SDK's default)
// and `openai.chat(model)` (chat completions), each with generateText and streamText, a second
// turn built from the first turn's response messages, and a failure in the middle of a stream.
// Usage: node ai_sdk.mjs BASE_URL PROMPT FOLLOW_UP FAILING_PROMPT; prints one JSON object.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, streamText } from "ai";

const [baseURL, prompt, followUp, failingPrompt] = process.argv.slice(2);
const openai = createOpenAI({ baseURL, apiKey: "unused" });
// The relay keeps no responses, so a second turn sends the text back, not a reference to it.
const stateless = { openai: { store: false } };
const result = {};

for (const [name, model] of [
  ["responses", openai("any")],
  ["chat", openai.chat("any")],
]) {
  const first = await generateText({
    model,
    system: "Be brief.",
    prompt,
    maxRetries: 0,
    providerOptions: stateless,
  });
  const second = streamText({
    model,
    system: "Be brief.",
    messages: [
      { role: "user", content: prompt },
      ...first.response.messages,
      { role: "user", content: followUp },
    ],
    maxRetries: 0,
    providerOptions: stateless,
  });
  const deltas = [];
  for await (const delta of second.textStream) deltas.push(delta);
  result[name] = {
    text: first.text,
    finishReason: first.finishReason,
    usage: { input: first.usage.inputTokens, output: first.usage.outputTokens },
    secondTurn: {
      deltas,
      text: await second.text,
      finishReason: await second.finishReason,
      output: (await second.usage).outputTokens,
    },
  };

  const failing = streamText({ model, prompt: failingPrompt, maxRetries: 0, onError: () => {} });
  const parts = [];
  for await (const part of failing.fullStream) {
    if (part.type === "text-delta") parts.push({ type: part.type, text: part.text });
    if (part.type === "error") parts.push({ type: part.type, message: String(part.error?.message ?? part.error) });
  }
  result[name].failure = parts;
}

// The SDK's default (store: true) sends earlier answers back as references to stored items.
const first = await generateText({ model: openai("any"), prompt, maxRetries: 0 });
try {
  await generateText({
    model: openai("any"),
    messages: [{ role: "user", content: prompt }, ...first.response.messages, { role: "user", content: followUp }],
    maxRetries: 0,
  });
  result.storedReference = { refused: false };
} catch (error) {
  result.storedReference = { refused: true, status: error.statusCode, message: error.message };
}
console.log(JSON.stringify(result));
