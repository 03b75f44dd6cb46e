// One run of the viewer: a request's thought drawn as its stream arrives.
//
// The grid has one column per thinking step (a trace entry): the input's tokens, heaviest
// on top, each shaded by its weight; the token the step wrote; whether the input was a
// mixture (latent), one token (discrete) or a vector. Above it, the entropy per step
// against the Cold Stop threshold, and where thinking ended and why; below it, the
// reasoning and the answer as the API split them, and the usage.

import { element } from "./form.js";

const SVG = "http://www.w3.org/2000/svg";
const CHART = { width: 640, height: 170, left: 44, right: 12, top: 14, bottom: 26 };

// Whitespace made visible: a token's text as a person can read it in the grid.
export function visible(text) {
  if (text === "") return "∅";
  return text.replaceAll(" ", "·").replaceAll("\n", "↵").replaceAll("\t", "→").replaceAll("\r", "␍");
}

// What a step fed the model: a vector (marked so by the server), one token, or a mixture.
function kindOf(entry) {
  if (typeof entry.kind === "string") return entry.kind;
  return entry.ids.length === 1 ? "discrete" : "latent";
}

function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

// A weight in two decimals, or one significant digit below 0.01 (never a bare "0.00").
function weightText(weight) {
  return weight >= 0.01 || weight === 0 ? weight.toFixed(2) : weight.toExponential(0);
}

// A weight in [0, 1] as a cell's background: pale for light weights, deep for heavy ones.
function heat(weight) {
  const w = Math.max(0, Math.min(1, weight));
  return { background: `hsl(22 88% ${(97 - 50 * w).toFixed(1)}%)`, color: w > 0.55 ? "#fff" : "#222" };
}

export class Run {
  // title: the settings in one line; threshold: the Cold Stop entropy threshold (0: off);
  // texts: the token-text cache (get(id), ensure(ids)).
  constructor({ title, prompt, threshold, texts }) {
    this.steps = [];
    this.threshold = threshold;
    this.texts = texts;
    this.end = null;
    this.status = element("span", { className: "status", text: "waiting for the server…" });
    this.actions = element("span", { className: "actions" });
    this.chart = svg("svg", { class: "entropy-chart", viewBox: `0 0 ${CHART.width} ${CHART.height}`,
      role: "img", "aria-label": "entropy per thinking step" });
    this.grid = element("div", { className: "grid" });
    this.reasoning = element("pre", { className: "reasoning" });
    this.answer = element("pre", { className: "answer" });
    this.usage = element("p", { className: "usage muted" });
    this.error = element("div", { className: "run-error", hidden: "" });
    this.body = element("div", { className: "run-body" },
      element("h4", { text: "Entropy per step (nats)" }), this.chart,
      element("h4", { text: "Thinking steps" }), this.grid,
      element("h4", { text: "Reasoning" }), this.reasoning,
      element("h4", { text: "Answer" }), this.answer,
      this.usage);
    this.node = element("article", { className: "run", "data-state": "streaming" },
      element("div", { className: "run-head" }, element("h3", { text: title }), this.actions),
      element("p", { className: "run-prompt muted", text: prompt }),
      this.status, this.error, this.body);
    this.drawChart();
  }

  setStatus(state, text) {
    this.node.dataset.state = state;
    this.status.textContent = text;
  }

  // Trace entries that arrived: their token texts first, then their columns.
  async addSteps(entries) {
    if (!entries.length) return;
    await this.texts.ensure(entries.flatMap((e) => [...e.ids, ...(e.token === undefined ? [] : [e.token])]));
    for (const entry of entries) {
      this.grid.append(this.column(entry, this.steps.length));
      this.steps.push(entry);
    }
    this.grid.scrollLeft = this.grid.scrollWidth;
    this.setStatus("streaming", `thinking… ${this.steps.length} steps`);
    this.drawChart();
  }

  column(entry, index) {
    const kind = kindOf(entry);
    const written = entry.token ?? entry.ids[0];
    const cells = entry.ids.map((id, i) => {
      const weight = entry.weights[i];
      const shade = heat(weight);
      const text = visible(this.texts.get(id));
      return element("div", {
        className: "cand", "data-id": String(id), "data-weight": String(weight),
        title: `token ${id} ${JSON.stringify(this.texts.get(id))} · weight ${weight.toFixed(4)}`,
        style: `background:${shade.background};color:${shade.color}`,
      }, element("span", { className: "tok", text }), element("span", { className: "w", text: weightText(weight) }));
    });
    return element("div", { className: `step ${kind}`, "data-step": String(index), "data-kind": kind },
      element("div", { className: "step-head" },
        element("span", { text: `#${index + 1}` }), element("span", { className: "kind", text: kind })),
      element("div", { className: "cands" }, ...cells),
      element("div", { className: "written", "data-id": String(written),
        title: `written: token ${written}`, text: visible(this.texts.get(written)) }),
      element("div", { className: "step-entropy", text: `H ${entry.entropy.toFixed(3)}` }));
  }

  addReasoning(text) { this.reasoning.textContent += text; }

  addAnswer(text) { this.answer.textContent += text; }

  // The choice's last chunk: its summary (its whole trace, end_reason) and finish reason.
  async finish(summary, finishReason) {
    if (summary) {
      if (summary.trace) await this.addSteps(summary.trace.slice(this.steps.length));
      this.end = summary;
      this.node.dataset.endReason = summary.end_reason;
    }
    const thought = summary ? `thinking ended: ${summary.end_reason} after ${summary.thinking_tokens} tokens · ` : "";
    this.setStatus("finished", `${thought}finish_reason: ${finishReason}`);
    this.drawChart();
  }

  setUsage(usage) {
    const reasoning = usage.completion_tokens_details?.reasoning_tokens;
    this.usage.textContent = `usage: prompt ${usage.prompt_tokens} · completion ${usage.completion_tokens}`
      + (reasoning === undefined || reasoning === null ? "" : ` (reasoning ${reasoning})`)
      + ` · total ${usage.total_tokens}`;
  }

  // An error from the server; a run refused before its first step shows only the error.
  fail(message) {
    this.body.hidden = !this.steps.length && !this.reasoning.textContent;
    this.error.hidden = false;
    this.error.textContent = message;
    this.setStatus("error", "the server answered with an error");
  }

  drawChart() {
    const { width, height, left, right, top, bottom } = CHART;
    const chart = this.chart;
    chart.replaceChildren();
    const entropies = this.steps.map((s) => s.entropy);
    const span = Math.max(this.threshold * 1.25, ...entropies, 0.5) * 1.1;
    const slots = Math.max(this.steps.length, 12);
    const plotW = width - left - right, plotH = height - top - bottom;
    const x = (i) => left + (i + 0.5) * (plotW / slots);
    const y = (h) => top + plotH * (1 - h / span);
    chart.append(svg("rect", { x: left, y: top, width: plotW, height: plotH, class: "plot" }));
    for (const h of [0, span / 2, span]) {
      chart.append(svg("text", { x: left - 6, y: y(h) + 4, class: "tick", "text-anchor": "end" }, h.toFixed(2)));
    }
    const every = Math.ceil(slots / 12);
    for (let i = 0; i < this.steps.length; i += every) {
      chart.append(svg("text", { x: x(i), y: height - 8, class: "tick", "text-anchor": "middle" }, String(i + 1)));
    }
    if (this.threshold > 0) {
      chart.append(svg("line", { x1: left, x2: width - right, y1: y(this.threshold), y2: y(this.threshold),
        class: "threshold" }));
      chart.append(svg("text", { x: width - right - 4, y: y(this.threshold) - 4, class: "threshold-label",
        "text-anchor": "end" }, `Cold Stop threshold ${this.threshold}`));
    }
    const points = entropies.map((h, i) => `${x(i).toFixed(1)},${y(h).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", { points, class: "entropy" }));
    entropies.forEach((h, i) => {
      const dot = svg("circle", { cx: x(i), cy: y(h), r: 2.6, class: "dot" });
      dot.append(svg("title", {}, `step ${i + 1}: ${h.toFixed(4)} nats`));
      chart.append(dot);
    });
    if (this.end) {
      const at = left + this.steps.length * (plotW / slots);
      const mark = svg("g", { class: "end", "data-end-reason": this.end.end_reason });
      mark.append(svg("line", { x1: at, x2: at, y1: top, y2: top + plotH }));
      const anchor = at > width * 0.7 ? "end" : "start";
      mark.append(svg("text", { x: anchor === "end" ? at - 5 : at + 5, y: top + 12, "text-anchor": anchor },
        `thinking ended: ${this.end.end_reason}`));
      chart.append(mark);
    }
  }
}
