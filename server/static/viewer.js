// The viewer's controls: the API key, the form, Send / Stop / Pin, and the stream.
//
// Send posts a streamed chat completion (fetch, read chunk by chunk as server-sent
// events) and hands each chunk's parts to the current Run; Stop aborts the fetch, which
// closes the stream, and the server aborts the request in its engine. Pin keeps the last
// run in the side column, so the next run can be compared with it.

import { clearFieldErrors, element, fieldFor, requestForm, softThinkingForm } from "./form.js";
import { Run } from "./run.js";

const KEY_STORAGE = "softthink-viewer-api-key";
const $ = (id) => document.getElementById(id);

const state = { soft: null, request: null, run: null, controller: null };

function headers() {
  const key = $("api-key").value.trim();
  const result = { "Content-Type": "application/json" };
  if (key) result.Authorization = `Bearer ${key}`;
  return result;
}

// An error response's message, as the server worded it.
async function errorOf(response) {
  let error = null;
  try { error = (await response.json()).error; } catch { /* not JSON */ }
  return { status: response.status, message: error?.message ?? response.statusText, param: error?.param ?? null };
}

function showBanner(text) {
  const banner = $("banner");
  banner.textContent = text;
  banner.hidden = !text;
}

// Show an error where it belongs: on the field it names, and above the runs.
function showError({ status, message, param }) {
  const form = $("request");
  const key = status === 401 ? form.ownerDocument.querySelector('[data-param="api_key"]') : null;
  const place = status === 401 ? null : fieldFor(form, param);
  if (place) {
    place.textContent = message;
    place.closest(".field, fieldset, section")?.querySelector("[data-param]")?.classList.add("invalid");
  }
  if (key) key.classList.add("invalid");
  showBanner(`${status}: ${message}`);
}

// Token texts, fetched once per id from the server (its tokenizer decodes them).
const texts = {
  known: new Map(),
  get(id) { return this.known.get(id) ?? `⟨${id}⟩`; },
  async ensure(ids) {
    const wanted = [...new Set(ids)].filter((id) => !this.known.has(id));
    if (!wanted.length) return;
    const response = await fetch("v1/soft_thinking/tokens", { method: "POST", headers: headers(),
      body: JSON.stringify({ ids: wanted }) });
    if (!response.ok) throw new Error((await errorOf(response)).message);
    const { tokens } = await response.json();
    wanted.forEach((id, i) => this.known.set(id, tokens[i]));
  },
};

async function loadSchema() {
  const status = $("schema-status");
  const response = await fetch("v1/soft_thinking/schema", { headers: headers() });
  if (!response.ok) {
    const error = await errorOf(response);
    status.textContent = `cannot read the parameter schema: ${error.status} ${error.message}`;
    showError(error);
    return;
  }
  const form = softThinkingForm(await response.json());
  state.soft?.node.remove();
  state.soft = form;
  status.hidden = true;
  $("soft-fields").append(form.node);
  $("send").disabled = false;
  showBanner("");
  clearFieldErrors($("request"));
}

function buildBody() {
  const messages = [];
  const system = $("system").value.trim();
  if (system) messages.push({ role: "system", content: system });
  messages.push({ role: "user", content: $("prompt").value });
  return { messages, ...state.request.read(), soft_thinking: state.soft.read(), stream: true,
    stream_options: { include_usage: true } };
}

// One server-sent event's data: a chunk, an error, or the end.
async function handleEvent(data, run) {
  if (data === "[DONE]") return;
  const chunk = JSON.parse(data);
  if (chunk.error) {
    run.fail(chunk.error.message);
    showError({ status: "error", message: chunk.error.message, param: chunk.error.param });
    return;
  }
  if (chunk.usage) run.setUsage(chunk.usage);
  for (const choice of chunk.choices ?? []) {
    if (choice.delta?.reasoning_content) run.addReasoning(choice.delta.reasoning_content);
    if (choice.delta?.content) run.addAnswer(choice.delta.content);
    const soft = choice.soft_thinking;
    if (choice.finish_reason) await run.finish(soft, choice.finish_reason);
    else if (soft?.trace) await run.addSteps(soft.trace);
  }
}

async function readEvents(response, run) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      const data = event.split("\n").filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trim()).join("\n");
      if (data) await handleEvent(data, run);
    }
  }
}

async function send(event) {
  event.preventDefault();
  if (!state.soft || state.controller) return;
  clearFieldErrors($("request"));
  $("api-key").classList.remove("invalid");
  showBanner("");
  const body = buildBody();
  const soft = body.soft_thinking;
  const run = new Run({
    title: state.soft.summary(soft), prompt: `“${$("prompt").value}”`,
    threshold: Number(soft.early_stopping_entropy_threshold ?? 0) || 0, texts,
  });
  state.run = run;
  $("live").replaceChildren(run.node);
  state.controller = new AbortController();
  setBusy(true);
  try {
    const response = await fetch("v1/chat/completions", { method: "POST", headers: headers(),
      body: JSON.stringify(body), signal: state.controller.signal });
    if (!response.ok) {
      const error = await errorOf(response);
      run.fail(`${error.status}: ${error.message}`);
      showError(error);
      return;
    }
    run.setStatus("streaming", "streaming…");
    await readEvents(response, run);
  } catch (error) {
    if (error.name === "AbortError") run.setStatus("stopped", `stopped after ${run.steps.length} steps`);
    else run.fail(String(error.message ?? error));
  } finally {
    state.controller = null;
    setBusy(false);
  }
}

function setBusy(busy) {
  $("send").disabled = busy || !state.soft;
  $("stop").disabled = !busy;
  $("pin").disabled = busy || !state.run;
}

function pin() {
  const run = state.run;
  if (!run) return;
  state.run = null;
  $("pin").disabled = true;
  const close = element("button", { type: "button", className: "unpin", title: "remove this run", text: "✕" });
  close.addEventListener("click", () => run.node.remove());
  run.actions.append(close);
  run.node.classList.add("pinned");
  $("pinned").prepend(run.node);
  $("live").replaceChildren(element("p", { className: "muted hint",
    text: "Pinned. Change the settings and Send again to compare." }));
}

async function start() {
  const key = $("api-key");
  key.value = localStorage.getItem(KEY_STORAGE) ?? "";
  key.addEventListener("change", () => {
    localStorage.setItem(KEY_STORAGE, key.value.trim());
    key.classList.remove("invalid");
    if (!state.soft) loadSchema();
  });
  state.request = requestForm();
  $("request-fields").append(state.request.node);
  $("request").addEventListener("submit", send);
  $("stop").addEventListener("click", () => state.controller?.abort());
  $("pin").addEventListener("click", pin);
  fetch("health").then((r) => r.json()).then((h) => { $("model").textContent = h.model; }).catch(() => {});
  await loadSchema();
}

start();
