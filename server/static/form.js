// The request form: a few OpenAI fields, and the soft_thinking fields built from the
// server's JSON schema of its parameter model (GET v1/soft_thinking/schema). A property
// marked "x-methods" shows only while one of those methods is chosen; every other
// property is common to all methods. Each input carries the dotted name the server uses
// for it in a 400 (data-param), so an error can point at its field.

// Fields the page sets itself: it always asks for soft thinking and for the trace it draws.
const FIXED = { enabled: true, return_trace: true };

// OpenAI fields of the chat request the form offers, with the page's starting values.
export const REQUEST_FIELDS = [
  { name: "max_tokens", type: "integer", value: "96", hint: "≥ 1" },
  { name: "temperature", type: "number", value: "0.6", hint: "> 0 with soft thinking" },
  { name: "top_p", type: "number", value: "", hint: "(0, 1]; empty: 1" },
  { name: "top_k", type: "integer", value: "", hint: "-1 or ≥ 1; empty: all" },
  { name: "seed", type: "integer", value: "", hint: "empty: random" },
];

// A new element with these attributes ("className", "text" for its text) and children.
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "className") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

// The value of a group of fields: each field's reader by name; fields left empty are left out.
function readAll(reads) {
  const value = {};
  for (const [name, readOne] of Object.entries(reads)) {
    const one = readOne();
    if (one !== undefined) value[name] = one;
  }
  return value;
}

// A property's default: on the property itself, else on the definition it refers to.
function defaultOf(root, property) {
  return property.default !== undefined ? property.default : resolve(root, property)?.default;
}

function resolve(root, node) {
  // Follow a local "$ref" ("#/$defs/Name") to its definition.
  while (node && node.$ref) {
    node = node.$ref.split("/").slice(1).reduce((at, key) => at[key], root);
  }
  return node;
}

function hintOf(node) {
  const bounds = [];
  if (node.minimum !== undefined) bounds.push(`≥ ${node.minimum}`);
  if (node.exclusiveMinimum !== undefined) bounds.push(`> ${node.exclusiveMinimum}`);
  if (node.maximum !== undefined) bounds.push(`≤ ${node.maximum}`);
  if (node.exclusiveMaximum !== undefined) bounds.push(`< ${node.exclusiveMaximum}`);
  return bounds.join(", ");
}

// A value typed into a text box (empty: undefined). A number field's value is a number
// where it reads as one, else the text as typed, so the server says what is wrong with
// it; a string field's is the text as typed, spaces included.
function typedValue(text, kind) {
  if (kind !== "integer" && kind !== "number") return text === "" ? undefined : text;
  const trimmed = text.trim();
  if (trimmed === "") return undefined;
  return Number.isNaN(Number(trimmed)) ? trimmed : Number(trimmed);
}

// One input for a scalar schema node; returns {node, read()} where read() gives the
// value to send (undefined: leave it out).
function scalarInput(param, node, initial, nullable) {
  if (node.type === "boolean") {
    const box = element("input", { type: "checkbox", "data-param": param });
    box.checked = Boolean(initial);
    return { node: box, read: () => box.checked };
  }
  if (node.enum) {
    const select = element("select", { "data-param": param });
    for (const option of node.enum) select.append(element("option", { value: option, text: option }));
    select.value = initial ?? node.enum[0];
    return { node: select, read: () => select.value };
  }
  const input = element("input", { type: "text", "data-param": param, spellcheck: "false" });
  if (["integer", "number"].includes(node.type)) input.setAttribute("inputmode", "decimal");
  input.value = initial === null || initial === undefined ? "" : String(initial);
  input.placeholder = nullable ? "none" : "";
  return {
    node: input,
    read: () => {
      const value = typedValue(input.value, node.type);
      return value === undefined && nullable ? null : value;
    },
  };
}

// A field row: label (the field's API name, as the README and the server's errors name
// it), input, hint and the place for the server's message about it.
function row(param, label, input, hint) {
  return element("div", { className: "field" },
    element("label", {}, element("span", { text: label }), input),
    hint ? element("span", { className: "hint", text: hint }) : "",
    element("div", { className: "field-error", "data-error-for": param }));
}

// The non-null alternative of an "anyOf [X, null]" node, or null.
function nullableOf(node) {
  if (!node.anyOf) return null;
  const others = node.anyOf.filter((option) => option.type !== "null");
  return others.length === 1 && others.length < node.anyOf.length ? others[0] : null;
}

// A property's field(s); returns {node, read()} (read gives the JSON value or undefined).
function buildProperty(root, param, name, property, initial) {
  const inner = nullableOf(property);
  const node = resolve(root, inner ?? property);
  if (node.oneOf && node.discriminator) return variantField(root, param, node, initial);
  if (node.type === "object" && node.properties) {
    const group = objectFields(root, param, node, initial ?? node.default ?? {});
    const box = element("fieldset", { "data-param": param },
      element("legend", { text: name }), group.node,
      element("div", { className: "field-error", "data-error-for": param }));
    return { node: box, read: group.read };
  }
  const input = scalarInput(param, node, initial, inner !== null);
  const hint = inner !== null ? [hintOf(node), "empty: none"].filter(Boolean).join("; ") : hintOf(node);
  return { node: row(param, name, input.node, hint), read: input.read };
}

// A discriminated union that may be null (noise): a select of its kinds, then the
// chosen kind's own fields.
function variantField(root, param, node, initial) {
  const tag = node.discriminator.propertyName;
  const variants = node.oneOf.map((option) => resolve(root, option));
  const select = element("select", { "data-param": param });
  select.append(element("option", { value: "", text: "none" }));
  const parts = {};
  const body = element("div", { className: "variant" });
  for (const variant of variants) {
    const kind = variant.properties[tag].const;
    select.append(element("option", { value: kind, text: kind }));
    const own = { ...variant, properties: { ...variant.properties } };
    delete own.properties[tag];
    parts[kind] = objectFields(root, `${param}.${kind}`, own, initial && initial[tag] === kind ? initial : {});
    parts[kind].node.dataset.variant = kind;
    body.append(parts[kind].node);
  }
  const show = () => {
    for (const [kind, part] of Object.entries(parts)) part.node.hidden = kind !== select.value;
  };
  select.value = initial ? initial[tag] : "";
  select.addEventListener("change", show);
  show();
  const box = element("div", { className: "variant-field" },
    row(param, param.split(".").pop(), select, ""), body);
  return {
    node: box,
    read: () => (select.value === "" ? null : { [tag]: select.value, ...parts[select.value].read() }),
  };
}

// The fields of an object node, each under `${prefix}.${name}`.
function objectFields(root, prefix, node, initial) {
  const container = element("div", { className: "fields" });
  const reads = {};
  for (const [name, property] of Object.entries(node.properties)) {
    const start = initial[name] !== undefined ? initial[name] : defaultOf(root, property);
    const built = buildProperty(root, `${prefix}.${name}`, name, property, start);
    container.append(built.node);
    reads[name] = built.read;
  }
  return { node: container, read: () => readAll(reads) };
}

// The soft_thinking form from the schema; returns {node, read(), summary()}.
export function softThinkingForm(schema) {
  const container = element("div", { className: "fields" });
  const fields = [];
  let methodSelect = null;
  for (const [name, property] of Object.entries(schema.properties)) {
    if (name in FIXED) continue;
    const built = buildProperty(schema, `soft_thinking.${name}`, name, property, defaultOf(schema, property));
    const methods = property["x-methods"];
    built.node.dataset.field = `soft_thinking.${name}`;
    if (methods) built.node.dataset.methods = methods.join(" ");
    if (name === "method") methodSelect = built.node.querySelector("select");
    fields.push({ name, methods, read: built.read, node: built.node, property });
    container.append(built.node);
  }
  const papers = schema["x-method-papers"] || {};
  const paper = element("p", { className: "paper muted" });
  if (methodSelect) methodSelect.closest(".field").after(paper);
  const method = () => (methodSelect ? methodSelect.value : undefined);
  const showMethod = () => {
    for (const field of fields) field.node.hidden = Boolean(field.methods) && !field.methods.includes(method());
    paper.textContent = papers[method()] || "";
  };
  if (methodSelect) methodSelect.addEventListener("change", showMethod);
  showMethod();
  const read = () => {
    const value = { ...FIXED };
    for (const field of fields) {
      if (field.node.hidden) continue;
      const one = field.read();
      if (one !== undefined) value[field.name] = one;
    }
    return value;
  };
  // What a run's title lists: the method and its settings that differ from the defaults.
  const summary = (sent) => {
    const parts = [];
    for (const field of fields) {
      if (!(field.name in sent) || field.name === "method") continue;
      const fallback = defaultOf(schema, field.property);
      if (JSON.stringify(sent[field.name]) !== JSON.stringify(fallback ?? null)) {
        parts.push(`${field.name}=${JSON.stringify(sent[field.name])}`);
      }
    }
    return `${sent.method ?? "default method"}${parts.length ? " · " + parts.join(" · ") : ""}`;
  };
  return { node: container, read, summary };
}

// The OpenAI request fields; returns {node, read()}.
export function requestForm() {
  const container = element("div", { className: "fields" });
  const reads = {};
  for (const field of REQUEST_FIELDS) {
    const input = element("input", { type: "text", "data-param": field.name, inputmode: "decimal",
      spellcheck: "false" });
    input.value = field.value;
    container.append(row(field.name, field.name, input, field.hint));
    reads[field.name] = () => typedValue(input.value, field.type);
  }
  return { node: container, read: () => readAll(reads) };
}

// The form's input for a server error's "param" (a dotted path such as
// "soft_thinking.noise.gumbel.temperature"): the input named so, else one whose name is
// the path with a segment left out (a union's tag), else the nearest enclosing field.
export function fieldFor(form, param) {
  if (!param) return null;
  const byName = (name) => form.querySelector(`[data-error-for="${CSS.escape(name)}"]`);
  let found = byName(param);
  const parts = param.split(".");
  for (let i = 0; !found && i < parts.length - 1; i++) {
    found = byName([...parts.slice(0, i), ...parts.slice(i + 1)].join("."));
  }
  for (let end = parts.length - 1; !found && end > 0; end--) found = byName(parts.slice(0, end).join("."));
  return found;
}

export function clearFieldErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) node.textContent = "";
  for (const node of form.querySelectorAll(".invalid")) node.classList.remove("invalid");
}
