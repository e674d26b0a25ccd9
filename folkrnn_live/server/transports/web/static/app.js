// The live score and control page: one WebSocket to the server, one panel per voice.
//
// The server sends JSON arrays of messages (see docs/web.md): "hello" (the controls' schema and
// every voice's tune so far), "fb" (feedback streams: tokens, notes, tunes, state, applied...),
// "reply" (errors and answers to this page's own commands) and "act" (the activation strip).
// Tokens are drawn at most once per animation frame per voice: however fast they come, each
// redraw holds every token received so far, so none is dropped from the notation.  A redraw
// draws only the line being written (notation.js's Score): the finished lines stay as drawn.

import { Strip } from "./activations.js";
import { buildControls, installLists, syncFromState } from "./controls.js";
import { Score, drawTune, startsNote } from "./notation.js";

const MAX_LOG = 40;
const MAX_PENDING = 500;
const MAX_LATENCIES = 500000;
const FINISHED_DRAWN = 1;  // finished tunes shown as notation (the newest; the others as links only)
const REDRAW_MS = 100;

const page = { ws: null, schema: null, voices: new Map(), nextId: 1, pending: new Map(), kept: 10 };
const stats = { tokens: 0, gaps: 0, stepMismatch: 0, renders: 0, renderMs: 0, latencies: [], errors: 0, applied: 0,
                hellos: 0, connected: false };
window.folkrnn = { page, stats, check, flush };

const now = () => (performance.timeOrigin + performance.now()) / 1000;
const $ = (sel, root = document) => root.querySelector(sel);

function setStatus(text, kind) {
  const s = $("#status");
  s.textContent = text;
  s.className = `status ${kind}`;
}

function connect() {
  const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  page.ws = ws;
  ws.onopen = () => {
    stats.connected = true;
    setStatus("connected", "up");
    if ($("#activations").checked) ws.send(JSON.stringify({ type: "activations", on: true }));
  };
  ws.onmessage = (ev) => { for (const m of JSON.parse(ev.data)) handle(m); };
  ws.onclose = (ev) => {
    stats.connected = false;
    setStatus(`disconnected${ev.reason ? ` (${ev.reason})` : ""}: reconnecting…`, "down");
    setTimeout(connect, 1000);
  };
}

function send(command, target, args, node) {
  const id = page.nextId++;
  page.pending.set(id, node);
  if (page.pending.size > MAX_PENDING) page.pending.delete(page.pending.keys().next().value);
  const err = node && node.querySelector ? node.querySelector(".error") : null;
  if (err) err.textContent = "";
  if (page.ws && page.ws.readyState === WebSocket.OPEN) {
    page.ws.send(JSON.stringify({ type: "command", id, command, target, args }));
  }
}

function handle(m) {
  if (m.type === "hello") return setup(m);
  if (m.type === "act") return page.voices.get(m.voice)?.strip.add(m);
  if (m.type === "reply") return onReply(m);
  if (m.type !== "fb") return;
  const v = m.voice === null ? null : page.voices.get(m.voice);
  if (m.stream === "tokens" && v) onToken(v, m);
  else if (m.stream === "notes" && v) onNote(v, m.data);
  else if (m.stream === "state" && v && m.name === "state") onState(v, m.data);
  else if (m.stream === "state" && v) log(v.errors, `${m.name}: ${JSON.stringify(m.data)}`, "error");
  else if (m.stream === "applied" && v) {
    stats.applied += 1;
    const args = Object.values(m.data.args || {}).flat().join(" ");
    log(v.errors, `applied ${m.data.command} ${args} (step ${m.data.step})`, "applied");
  } else if (m.stream === "tunes" && v && m.name === "tune_start" && v.tune && v.tune.number === m.data.tune) {
    v.tune.seed = m.data.seed;
    label(v);
  }
}

// --- voices -------------------------------------------------------------------------------------
function setup(hello) {
  stats.hellos += 1;
  page.schema = hello.schema;
  page.kept = hello.tunes_kept || page.kept;
  installLists(hello.schema);
  buildControls($("#global-controls"), hello.schema, "global", (c, a, n) => send(c, null, a, n));
  const main = $("#voices");
  main.replaceChildren();
  page.voices.clear();
  for (const name of hello.schema.voices) {
    const snap = hello.voices[name];
    if (snap) page.voices.set(name, makeVoice(name, snap));
  }
  for (const v of page.voices.values()) main.append(v.panel);
  showStrips($("#activations").checked);
}

function makeVoice(name, snap) {
  const panel = $("#voice-template").content.firstElementChild.cloneNode(true);
  panel.dataset.voice = name;
  $(".voice-name", panel).textContent = `voice ${name}`;
  const v = { name, panel, score: new Score($(".score", panel)), tune: null, lastTotal: -1, dirty: false,
              times: [], playing: -1, errors: $(".errors", panel), finished: $(".tunes", panel),
              strip: new Strip($(".heatmap", panel), $(".top", panel)) };
  v.widgets = buildControls($(".controls", panel), page.schema, "voice", (c, a, n) => send(c, name, a, n));
  for (const t of snap.finished) addFinished(v, t, null);
  const cur = snap.current;
  if (cur) {
    v.tune = newTune(cur.tune, cur.seed);
    cur.tokens.forEach((tok, i) => addToken(v.tune, tok, cur.play_steps[i]));
    v.lastTotal = cur.first_total + cur.length - 1;
    v.dirty = true;
    schedule();
  }
  if (snap.state) onState(v, snap.state);
  label(v);
  return v;
}

function newTune(number, seed) {
  return { number, seed, tokens: [], play: new Map() };
}

function addToken(tune, token, play) {
  tune.play.set(play, tune.tokens.length);
  tune.tokens.push(token);
}

function label(v) {
  const t = v.tune;
  $(".tune-label", v.panel).textContent = t ? `tune ${t.number}${t.seed === null || t.seed === undefined ? ""
    : ` · seed ${t.seed}`} · ${t.tokens.length} tokens` : "";
}

function onToken(v, m) {
  const d = m.data;
  stats.tokens += 1;
  if (v.lastTotal >= 0 && d.total !== v.lastTotal + 1) {
    stats.gaps += Math.max(1, d.total - v.lastTotal - 1);
    const g = $(".gaps", v.panel);
    g.hidden = false;
    g.textContent = `${stats.gaps} token(s) missed`;
  }
  v.lastTotal = d.total;
  if (!v.tune || v.tune.number !== d.tune) {
    if (v.tune && v.tune.tokens.length) addFinished(v, null, v.tune);
    v.tune = newTune(d.tune, null);
  }
  if (d.step !== v.tune.tokens.length) stats.stepMismatch += 1;
  addToken(v.tune, d.token, m.play);
  v.times.push(m.t);
  v.dirty = true;
  schedule();
}

function onNote(v, d) {
  const idx = v.tune ? v.tune.play.get(d.step) : undefined;
  if (idx === undefined) return;
  v.playing = idx;
  v.score.highlight(idx);
}

function onState(v, s) {
  $(".voice-state", v.panel).textContent = `${s.state} · ${Math.round(s.player.tempo)} BPM`;
  const c = s.controls || {};
  const items = [`temperature ${c.temperature}`];
  const bias = Object.entries(c.bias || {});
  if (bias.length) items.push(`bias ${bias.map(([t, b]) => `${t} ${b > 0 ? "+" : ""}${b.toFixed(2)}`).join(", ")}`);
  const sup = Object.entries(c.suppress || {});
  if (sup.length) items.push(`suppress ${sup.map(([t, n]) => (n === null ? t : `${t} (${n} steps)`)).join(" ")}`);
  for (const [layer, sn] of Object.entries(c.snip || {})) items.push(`snip layer ${layer}: ${sn.units} units (${sn.mode})`);
  if (c.force) items.push(`force ${c.force.weight_generated} + ${c.force.mix.map(([n, w]) => `${w}×${n} tokens`).join(" ")}`
                          + (c.force.steps_left === null ? "" : ` (${c.force.steps_left} steps)`));
  if (c.inject && c.inject.length) items.push(`inject ${c.inject.length} waiting`);
  if (c.steer) items.push(`steer component ${c.steer.component} × ${c.steer.alpha}`);
  if (s.recording) items.push(`recording to ${s.recording}`);
  const ul = document.createElement("ul");
  for (const text of items) { const li = document.createElement("li"); li.textContent = text; ul.append(li); }
  $(".interventions", v.panel).replaceChildren(ul);
  syncFromState(v.widgets, s);
}

function addFinished(v, meta, tune) {
  const number = tune ? tune.number : meta.tune;
  const seed = tune ? tune.seed : meta.seed;
  const n = tune ? tune.tokens.length : meta.length;
  const li = document.createElement("li");
  const head = document.createElement("div");
  head.textContent = `tune ${number}${seed === null || seed === undefined ? "" : ` · seed ${seed}`} · ${n} tokens · `;
  for (const kind of ["abc", "mid"]) {
    const a = document.createElement("a");
    a.href = `/tunes/${encodeURIComponent(v.name)}/${number}.${kind}`;
    a.textContent = kind === "abc" ? "ABC" : "MIDI";
    a.download = `folkrnn-${v.name}-${number}.${kind}`;
    head.append(a, document.createTextNode(" "));
  }
  li.append(head);
  v.finished.prepend(li);
  if (tune) {  // drawn once it is in the page, where its width is known
    const div = document.createElement("div");
    div.className = "small-score";
    li.append(div);
    drawTune(div, tune.tokens, { scale: 0.7 });  // once: a finished tune never changes
  }
  const drawn = v.finished.querySelectorAll(".small-score");
  for (let i = FINISHED_DRAWN; i < drawn.length; i++) drawn[i].remove();
  while (v.finished.childElementCount > page.kept) v.finished.lastElementChild.remove();
}

// --- replies and logs ----------------------------------------------------------------------------
function onReply(m) {
  const d = m.data || {};
  if (m.name === "error") {
    stats.errors += 1;
    const where = /^\/folkrnn\/([^/]+)\/[^/]+$/.exec(d.address || "");
    const v = where ? page.voices.get(where[1]) : null;
    const text = `${d.address || "error"}${d.argument ? ` ${d.argument}` : ""}: ${d.message}`;
    log(v ? v.errors : $("#global-log"), text, "error");
    const node = m.id === undefined ? null : page.pending.get(m.id);
    const span = node && node.querySelector ? node.querySelector(".error") : null;
    if (span) span.textContent = d.message;
  } else if (m.name === "state" && page.voices.has(m.voice)) {
    onState(page.voices.get(m.voice), d);
  } else {
    log($("#global-log"), `${m.name} ${JSON.stringify(d)}`, "reply");
  }
}

function log(list, text, kind) {
  const li = document.createElement("li");
  li.className = kind;
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  list.prepend(li);
  while (list.childElementCount > MAX_LOG) list.lastElementChild.remove();
}

// --- drawing -------------------------------------------------------------------------------------
// Draw the voices with new tokens: at most once per animation frame, and at most every REDRAW_MS
// (a redraw costs a few ms of layout and painting; with four voices at 240 BPM, drawing every
// token kept a core of a small machine 40 % busy, time the server's notes need).  The redraw's
// cost is the line being written, not the whole tune (stats.renderMs counts it).  All voices are
// drawn in the same frame: each frame with a change costs the browser a paint, a raster and a
// composite of its own (more CPU than abcjs's drawing, in a trace), so voices drawn each on its
// own beat took four frames where one does.
let lastDraw = 0;  // when voices were last drawn (s)
function flush(force = true) {
  const t = now();
  const due = force || (t - lastDraw) * 1000 >= REDRAW_MS;
  let waiting = false;
  for (const v of page.voices.values()) {
    if (!v.dirty || !v.tune) continue;
    if (!due) { waiting = true; continue; }
    lastDraw = t;
    v.dirty = false;
    const t0 = performance.now();
    v.score.draw(v.tune.tokens);
    if (v.playing >= 0) v.score.highlight(v.playing);
    const done = now();
    for (const sent of v.times) if (stats.latencies.length < MAX_LATENCIES) stats.latencies.push(done - sent);
    v.times = [];
    label(v);
    stats.renders += 1;
    stats.renderMs += performance.now() - t0;
  }
  return waiting;
}

let frameDue = false;
function schedule(delay = 0) {
  if (frameDue) return;
  frameDue = true;
  const go = () => requestAnimationFrame(() => { frameDue = false; if (flush(false)) schedule(REDRAW_MS / 2); });
  if (delay > 0) setTimeout(go, delay); else go();
}

// For tests and benchmarks: per voice, the tune's tokens, how many of them start a note, and how
// many notes and rests the drawn notation holds (after drawing what is pending).
function check() {
  flush();
  const out = {};
  for (const [name, v] of page.voices) {
    let depth = 0;
    let starts = 0;
    for (const t of v.tune ? v.tune.tokens : []) {
      if (t === "[") { if (depth === 0) starts += 1; depth += 1; } else if (t === "]") depth = Math.max(0, depth - 1);
      else if (depth === 0 && startsNote(t)) starts += 1;
    }
    out[name] = { tune: v.tune ? v.tune.number : null, tokens: v.tune ? v.tune.tokens.length : 0,
                  lastTotal: v.lastTotal, noteTokens: starts, drawnNotes: v.score.noteCount() };
  }
  return out;
}

function showStrips(on) {
  for (const v of page.voices.values()) $(".activations", v.panel).hidden = !on;
}

$("#activations").addEventListener("change", (ev) => {
  showStrips(ev.target.checked);
  if (page.ws && page.ws.readyState === WebSocket.OPEN) {
    page.ws.send(JSON.stringify({ type: "activations", on: ev.target.checked }));
  }
});

connect();
