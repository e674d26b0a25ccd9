// Controls built from the server's command registry (GET /api/schema, or the hello message).
//
// Nothing here names a command: a number with a range becomes a slider with a text box beside it
// (the box sends what is typed, unchecked: the server validates and answers with its error), a
// token or selector a text box offering the vocabulary and the classes, a choice a menu, a flag a
// checkbox, a command without arguments a button.  A command with one slider, menu or checkbox
// sends as it moves; the others have a send button.

const GROUP_ORDER = ["transport", "sampler", "player", "recording", "session"];
const OPEN_GROUPS = ["transport", "sampler", "session"];  // the others start folded
const SLIDER_EVERY_MS = 60;  // a dragged slider sends at most this often (its last value always)
const HANDS_OFF_MS = 3000;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function sliderStep(a) {
  if (a.type === "int") return 1;
  const span = a.hi - a.lo;
  return Math.pow(10, Math.floor(Math.log10(span / 200)));
}

// A value as typed: a number when it reads as one, else the text (for the server to refuse).
function typed(text, type) {
  const s = String(text).trim();
  if ((type === "int" || type === "float") && s !== "" && Number.isFinite(Number(s))) return Number(s);
  return s;
}

function widget(a, schema, onLive) {
  const id = `arg-${Math.random().toString(36).slice(2)}`;
  if ((a.type === "int" || a.type === "float") && a.lo !== undefined && !a.variadic) {
    const step = sliderStep(a);
    const lo = a.exclusive ? a.lo + step : a.lo;
    const hi = a.exclusive ? a.hi - step : a.hi;
    // No default: an integer starts at its lowest value (a layer, a component, a seed), a number
    // in the middle of its range (a bias or a steering strength: 0).
    const start = a.default !== undefined && a.default !== null ? a.default : a.type === "int" ? lo : (lo + hi) / 2;
    const range = el("input", { type: "range", min: lo, max: hi, step, value: start, "aria-label": a.name });
    const box = el("input", { type: "text", class: "value", inputmode: "decimal", value: String(start),
                              size: 5, "aria-label": `${a.name} value` });
    // The server's state shows in the control, but never under the performer's hand: not while it
    // has the focus, nor within a few seconds of being moved (the state may predate the move).
    let touched = 0;
    const touch = () => { touched = Date.now(); };
    range.addEventListener("input", () => { touch(); box.value = range.value; onLive("drag"); });
    range.addEventListener("change", () => { touch(); box.value = range.value; onLive("done"); });
    box.addEventListener("input", touch);
    box.addEventListener("change", () => { touch(); onLive("typed"); });
    const busy = () => Date.now() - touched < HANDS_OFF_MS || [range, box].includes(document.activeElement);
    return { node: el("span", { class: "slider" }, range, box), live: true,
             get: () => typed(box.value, a.type),
             set: (v) => { if (!busy()) { range.value = v; box.value = String(v); } } };
  }
  if (a.type === "bool") {
    const box = el("input", { type: "checkbox", "aria-label": a.name });
    box.addEventListener("change", () => onLive("done"));
    return { node: box, live: true, get: () => box.checked, set: (v) => { box.checked = !!v; } };
  }
  if (a.type === "choice" && !a.variadic) {
    const sel = el("select", { "aria-label": a.name });
    if (!a.required) sel.append(el("option", { value: "", text: "—" }));
    for (const c of a.choices) sel.append(el("option", { value: c, text: c }));
    if (a.default !== undefined && a.default !== null) sel.value = a.default;
    sel.addEventListener("change", () => onLive("done"));
    return { node: sel, live: true, get: () => (sel.value === "" ? null : sel.value),
             set: (v) => { sel.value = v; } };
  }
  const listId = a.type === "selector" ? "list-selectors" : a.type === "token" ? "list-tokens" : null;
  const attrs = { type: "text", "aria-label": a.name, placeholder: a.describe, size: a.variadic ? 18 : 8 };
  if (listId) attrs.list = listId;
  if (a.default !== undefined && a.default !== null) attrs.value = String(a.default);
  const box = el("input", attrs);
  const get = () => {
    if (!a.variadic) return box.value.trim() === "" && !a.required ? null : typed(box.value, a.type);
    return box.value.split(/\s+/).filter((s) => s !== "").map((s) => typed(s, a.type));
  };
  return { node: box, live: false, get, set: (v) => { box.value = String(v); } };
}

// The datalists shared by every token and selector box.
export function installLists(schema) {
  for (const id of ["list-tokens", "list-selectors"]) document.getElementById(id)?.remove();
  const tokens = el("datalist", { id: "list-tokens" });
  for (const t of schema.tokens) tokens.append(el("option", { value: t }));
  const selectors = el("datalist", { id: "list-selectors" });
  for (const t of [...schema.selectors, ...schema.tokens]) selectors.append(el("option", { value: t }));
  document.body.append(tokens, selectors);
}

// Build the controls of one scope ("voice" for a voice panel, "global" for the server) into
// container; send(command, args, node) sends one command and returns nothing.
export function buildControls(container, schema, scope, send) {
  container.replaceChildren();
  const widgets = new Map();  // command name -> {args: [widget], node}
  const groups = [...new Set(schema.commands.filter((c) => c.scope === scope).map((c) => c.group))];
  groups.sort((a, b) => (GROUP_ORDER.indexOf(a) + 99) % 99 - (GROUP_ORDER.indexOf(b) + 99) % 99);
  for (const g of groups) {
    const cmds = schema.commands.filter((c) => c.scope === scope && c.group === g);
    const box = el("details", { class: `group group-${g}` }, el("summary", { text: schema.groups[g] || g }));
    if (OPEN_GROUPS.includes(g)) box.open = true;
    const buttons = el("div", { class: "buttons" });
    for (const c of cmds) {
      if (c.args.length === 0) {
        const b = el("button", { type: "button", title: c.help, "data-command": c.name, text: c.name });
        b.addEventListener("click", () => send(c.name, [], b));
        buttons.append(b);
        continue;
      }
      const row = el("div", { class: "cmd", "data-command": c.name, title: c.help },
                     el("span", { class: "name", text: c.name }));
      let last = 0;
      let timer = null;
      const args = [];
      const fire = () => { last = Date.now(); send(c.name, collect(args), row); };
      const onLive = (how) => {
        if (!(args.length === 1 && args[0].live)) return;  // the others wait for their send button
        if (how !== "drag") { clearTimeout(timer); timer = null; fire(); return; }
        const wait = SLIDER_EVERY_MS - (Date.now() - last);
        if (wait <= 0) fire();
        else if (!timer) timer = setTimeout(() => { timer = null; fire(); }, wait);
      };
      for (const a of c.args) {
        const w = widget(a, schema, onLive);
        args.push(w);
        row.append(el("label", { class: "arg", title: a.help }, el("span", { text: a.name }), w.node));
      }
      if (!(args.length === 1 && args[0].live)) {
        const b = el("button", { type: "button", class: "send", text: "send" });
        b.addEventListener("click", () => fire());
        row.append(b);
      }
      row.append(el("span", { class: "error" }));
      widgets.set(c.name, { args, node: row });
      box.append(row);
    }
    if (buttons.childElementCount) box.insertBefore(buttons, box.querySelector("summary").nextSibling);
    container.append(box);
  }
  return widgets;
}

function collect(args) {
  const out = [];
  for (const w of args) {
    const v = w.get();
    if (Array.isArray(v)) out.push(...v);
    else if (v === null) break;  // an optional argument left empty: it and the rest take their defaults
    else out.push(v);
  }
  return out;
}

// Show the voice's current settings in its single-value controls (temperature, tempo, ...): the
// state snapshot names them as the commands do.
export function syncFromState(widgets, state) {
  const sources = [state.controls || {}, state.player || {}, state];
  for (const [name, w] of widgets) {
    if (w.args.length !== 1) continue;
    for (const src of sources) {
      const v = src[name];
      if (v !== undefined && v !== null && typeof v !== "object") { w.args[0].set(v); break; }
    }
  }
}
