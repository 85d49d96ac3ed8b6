// The `openai` npm package against the relay, as a Node app calls it: chat completions (whole
// and streamed, then a second turn built from the message it returned) and the Responses API
// (whole and streamed, then a second turn from the output items it returned).
// Usage: node openai_npm.mjs BASE_URL PROMPT FOLLOW_UP; prints one JSON object.
import OpenAI from "openai";

const [baseURL, prompt, followUp] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
const model = "any";
const result = {};

const question = [{ role: "user", content: prompt }];
const whole = await client.chat.completions.create({ model, messages: question });
result.chat = {
  object: whole.object,
  model: whole.model,
  text: whole.choices[0].message.content,
  finishReason: whole.choices[0].finish_reason,
  usage: whole.usage,
};
const chunks = await client.chat.completions.create({
  model,
  messages: [...question, whole.choices[0].message, { role: "user", content: followUp }],
  stream: true,
  stream_options: { include_usage: true },
});
const deltas = [];
let chatUsage = null;
for await (const chunk of chunks) {
  if (chunk.choices.length) deltas.push(chunk.choices[0].delta.content ?? "");
  if (chunk.usage) chatUsage = chunk.usage;
}
result.chatSecondTurnStreamed = { deltas, usage: chatUsage };

const response = await client.responses.create({ model, instructions: "Be brief.", input: prompt });
result.responses = {
  object: response.object,
  status: response.status,
  text: response.output_text,
  usage: response.usage,
};
const events = await client.responses.create({
  model,
  instructions: "Be brief.",
  input: [
    { role: "user", content: prompt },
    ...response.output,
    { role: "user", content: [{ type: "input_text", text: followUp }] },
  ],
  stream: true,
});
const types = [];
const textDeltas = [];
let final = null;
for await (const event of events) {
  types.push(event.type);
  if (event.type === "response.output_text.delta") textDeltas.push(event.delta);
  if (event.type === "response.completed") final = event.response;
}
result.responsesSecondTurnStreamed = {
  types,
  deltas: textDeltas,
  finalText: final?.output_text ?? final?.output?.[0]?.content?.[0]?.text ?? null,
  usage: final?.usage ?? null,
};
console.log(JSON.stringify(result));
