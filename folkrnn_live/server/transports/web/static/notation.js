// v2 tokens to ABC for abcjs, line by line, with each token's place in the text; the drawing of a tune.
//
// The server keeps the real converter (folkrnn_live/abc/writer.py, used for downloads); here the
// tune being written is redrawn after every batch of tokens, so the conversion must be cheap and
// must keep every token: tokens are glued within a bar (v2 writes a note's pitch, duration and
// broken rhythm as separate tokens, ABC writes them together) and bars are separated by spaces,
// four to a line.

const MODE_KEYS = { Cmaj: "C", Cmin: "Cm", Cdor: "Cdor", Cmix: "Cmix" };
const BARS = new Set(["|", "|:", ":|", "|1", "|2"]);
const BARS_PER_LINE = 4;

function isMeter(t) { return t.startsWith("M:"); }
function isMode(t) { return t.startsWith("K:"); }
// Tokens a note element starts with: a pitch, a rest, or a chord's "[".
export function startsNote(t) { return t === "z" || t === "[" || /^[=^_]?[A-Ga-g][,']*$/.test(t); }

function header(title, meter, mode) {
  return "X:1\n" + (title ? `T:${title}\n` : "") + `M:${meter || "none"}\nL:1/8\nK:${mode || "C"}\n`;
}

// tokens -> the tune's lines, each {first, abc, head, offsets}: the line is a tune of its own (abc:
// X:, the title on the first line only, the meter and mode in force where the line starts, then
// its music from abc[head]); tokens first .. first + offsets.length - 1 are on it, offsets[j] is
// where token first + j starts in abc (-1: not drawn).  The tune's leading meter and mode tokens
// are on no line.  A line ends after four bars, but only when the next token that draws a note or
// a field arrives: the bar lines joined to its last bar (":| |2" is ":|2") stay on it, so a line
// followed by another never changes again.
export function tokensToLines(tokens, title) {
  let i = 0;
  let meter = null;
  let mode = null;
  while (i < tokens.length) {  // the header: leading meter and mode tokens, each at most once
    const t = tokens[i];
    if (isMeter(t) && meter === null) meter = t.slice(2);
    else if (isMode(t) && mode === null) mode = MODE_KEYS[t.slice(2)] || "C";
    else if (t !== "<s>") break;
    i += 1;
  }
  const lines = [];
  const open = (first) => {
    const abc = header(lines.length ? "" : title, meter, mode);
    lines.push({ first, abc, head: abc.length, offsets: [] });
    return lines[lines.length - 1];
  };
  let line = open(i);
  let bars = 0;
  let prev = "";
  for (; i < tokens.length; i++) {
    const t = tokens[i];
    let at = -1;
    if (BARS.has(t)) {
      if (prev === ":|" && (t === "|1" || t === "|2")) line.abc += t.slice(1);  // :| |2 is :|2 in ABC
      else if (prev === ":|" && t === "|:") line.abc += "|:";                    // :| |: is :||:
      else { line.abc += " " + t; bars += 1; }
    } else if (t !== "<s>" && t !== "</s>") {
      if (bars >= BARS_PER_LINE) { line = open(i); bars = 0; }
      // A space after a bar line, and before a tuplet (glued to the note before, it would be read
      // as that note's length).
      const gap = BARS.has(prev) || t.startsWith("(");
      if (gap && line.abc.length > line.head && !line.abc.endsWith(" ")) line.abc += " ";
      at = line.abc.length;
      if (isMeter(t)) { meter = t.slice(2); line.abc += `[M:${meter}]`; }
      else if (isMode(t)) { mode = MODE_KEYS[t.slice(2)] || "C"; line.abc += `[K:${mode}]`; }
      else line.abc += t;
    }
    if (t !== "<s>" && t !== "</s>") prev = t;
    line.offsets.push(at);
  }
  return lines;
}

// tokens -> {abc, offsets} for the whole tune: the lines joined (their meter and mode changes are
// inline fields already); offsets[i] is where token i starts in abc (-1: not drawn).
export function tokensToAbc(tokens, title) {
  const offsets = new Array(tokens.length).fill(-1);
  let abc = "";
  tokensToLines(tokens, title).forEach((line, k) => {
    if (k > 0) abc += "\n";
    const from = k === 0 ? 0 : line.head;  // the first line's header is the tune's
    const shift = abc.length - from;
    abc += line.abc.slice(from);
    line.offsets.forEach((o, j) => { if (o >= 0) offsets[line.first + j] = o + shift; });
  });
  return { abc, offsets };
}

// abcjs's options for a staff as wide as the element (read each time: the window may have been
// resized).  stretch: spread the notes over the whole width, as a printed tune's full lines are.
function render(element, abc, scale, stretch) {
  const width = Math.max(300, element.clientWidth / scale - 20);
  const tune = window.ABCJS.renderAbc(element, abc, {
    add_classes: true, staffwidth: width, scale, paddingtop: 4, paddingbottom: 4, paddingleft: 4, paddingright: 4,
    format: { stretchlast: stretch } })[0];
  // abcjs puts a <style> in every SVG (for dragging notes, which this page does not do): a style
  // sheet coming and going at each redraw made the browser recompute the whole page's styles.
  for (const sheet of element.querySelectorAll("svg > style")) sheet.remove();
  return tune;
}

// A finished tune, drawn once as a whole (lines broken every four bars and stretched, the last not).
export function drawTune(element, tokens, { scale = 1.0, title = "" } = {}) {
  render(element, tokensToAbc(tokens, title).abc, scale, false);
}

// The tune being written, drawn as a stack of lines, one element each.  A line followed by another
// is drawn once more, stretched like a printed tune's full lines, and then never again; a redraw
// draws only the line being written.  (Redrawing the whole tune each time cost more the longer
// the tune, and four voices' redraws kept enough of a small machine's CPU busy to delay the
// server's notes.)
export class Score {
  // scale: 1 for the tune being written; smaller for the finished tunes below it.
  constructor(element, { scale = 1.0 } = {}) {
    this.element = element;
    this.scale = scale;
    this.source = null;  // the token array drawn: a new one is a new tune
    this.lines = [];     // per line drawn: {el, tune (abcjs's), first, offsets, final}
    this.playing = [];
  }

  draw(tokens, title) {
    if (tokens !== this.source) {
      this.source = tokens;
      this.lines = [];
      this.element.replaceChildren();
    }
    const lines = tokensToLines(tokens, title);
    for (let k = 0; k < lines.length; k++) {
      if (this.lines[k] && this.lines[k].final) continue;
      let el = this.lines[k] && this.lines[k].el;
      if (!el) {
        el = document.createElement("div");
        el.className = "score-line";
        this.element.append(el);
      }
      const final = k < lines.length - 1;
      const tune = render(el, lines[k].abc, this.scale, final);
      this.lines[k] = { el, tune, first: lines[k].first, offsets: lines[k].offsets, final };
    }
  }

  // Mark the note that token index i starts (the note now sounding), on whichever line it is;
  // -1 clears the mark.  (The marked elements of a line redrawn since are gone from the page:
  // unmarking them is harmless.)
  highlight(i) {
    for (const el of this.playing) el.classList.remove("playing");
    this.playing = [];
    const line = this.lines.find((l) => i >= l.first && i < l.first + l.offsets.length);
    const at = line ? line.offsets[i - line.first] : -1;
    if (at < 0 || !line.tune) return false;
    const elem = line.tune.getElementFromChar(at);
    const set = elem && elem.abselem && elem.abselem.elemset;
    if (!set) return false;
    for (const el of set) { el.classList.add("playing"); this.playing.push(el); }
    return true;
  }

  // Notes and rests drawn, all lines together.
  noteCount() {
    return this.element.querySelectorAll("g.abcjs-note, g.abcjs-rest").length;
  }
}
