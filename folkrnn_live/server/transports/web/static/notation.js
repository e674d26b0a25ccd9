// v2 tokens to ABC for abcjs, with each token's place in the text, and the drawing of one tune.
//
// The server keeps the real converter (folkrnn_live/abc/writer.py, used for downloads); here the
// tune is redrawn after every batch of tokens, so the conversion must be cheap and must keep every
// token: tokens are glued within a bar (v2 writes a note's pitch, duration and broken rhythm as
// separate tokens, ABC writes them together) and bars are separated by spaces, four to a line.

const MODE_KEYS = { Cmaj: "C", Cmin: "Cm", Cdor: "Cdor", Cmix: "Cmix" };
const BARS = new Set(["|", "|:", ":|", "|1", "|2"]);
const BARS_PER_LINE = 4;

function isMeter(t) { return t.startsWith("M:"); }
function isMode(t) { return t.startsWith("K:"); }
// Tokens a note element starts with: a pitch, a rest, or a chord's "[".
export function startsNote(t) { return t === "z" || t === "[" || /^[=^_]?[A-Ga-g][,']*$/.test(t); }

// tokens -> {abc, offsets}: offsets[i] is where token i starts in the ABC text (-1: not drawn).
export function tokensToAbc(tokens, title) {
  let i = 0;
  let meter = null;
  let mode = null;
  const offsets = new Array(tokens.length).fill(-1);
  while (i < tokens.length) {  // the header: leading meter and mode tokens, each at most once
    const t = tokens[i];
    if (isMeter(t) && meter === null) meter = t.slice(2);
    else if (isMode(t) && mode === null) mode = MODE_KEYS[t.slice(2)] || "C";
    else if (t !== "<s>") break;
    i += 1;
  }
  let abc = "X:1\n" + (title ? `T:${title}\n` : "") + `M:${meter || "none"}\nL:1/8\nK:${mode || "C"}\n`;
  let bars = 0;
  let prev = "";
  for (; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === "<s>" || t === "</s>") continue;
    if (BARS.has(t)) {
      if (prev === ":|" && (t === "|1" || t === "|2")) abc += t.slice(1);      // :| |2 is :|2 in ABC
      else if (prev === ":|" && t === "|:") abc += "|:";                        // :| |: is :||:
      else abc += " " + t;
      bars += 1;
      abc += bars % BARS_PER_LINE === 0 ? "\n" : " ";
    } else if (isMeter(t)) {
      offsets[i] = abc.length;
      abc += `[M:${t.slice(2)}]`;
    } else if (isMode(t)) {
      offsets[i] = abc.length;
      abc += `[K:${MODE_KEYS[t.slice(2)] || "C"}]`;
    } else {
      if (t.startsWith("(") && !abc.endsWith(" ") && !abc.endsWith("\n")) abc += " ";
      offsets[i] = abc.length;
      abc += t;
    }
    prev = t;
  }
  return { abc, offsets };
}

// One tune drawn into one element; redraws are cheap enough to do per animation frame.
export class Score {
  // scale: 1 for the tune being written; smaller for the finished tunes below it.
  constructor(element, { scale = 1.0 } = {}) {
    this.element = element;
    this.scale = scale;
    this.tune = null;
    this.offsets = [];
    this.playing = [];
  }

  draw(tokens, title) {
    const { abc, offsets } = tokensToAbc(tokens, title);
    this.offsets = offsets;
    this.playing = [];
    // The staff as wide as the panel (read each time: the window may have been resized); lines
    // are broken every four bars by tokensToAbc and stretched to this width, the last one not.
    const width = Math.max(300, this.element.clientWidth / this.scale - 20);
    this.tune = window.ABCJS.renderAbc(this.element, abc, {
      add_classes: true, staffwidth: width, scale: this.scale, paddingtop: 4, paddingbottom: 4,
      paddingleft: 4, paddingright: 4 })[0];
    return abc;
  }

  // Mark the note that token index i starts (the note now sounding); -1 clears the mark.
  highlight(i) {
    for (const el of this.playing) el.classList.remove("playing");
    this.playing = [];
    if (i < 0 || !this.tune || i >= this.offsets.length || this.offsets[i] < 0) return false;
    const elem = this.tune.getElementFromChar(this.offsets[i]);
    const set = elem && elem.abselem && elem.abselem.elemset;
    if (!set) return false;
    for (const el of set) { el.classList.add("playing"); this.playing.push(el); }
    return true;
  }

  noteCount() {
    return this.element.querySelectorAll("g.abcjs-note, g.abcjs-rest").length;
  }
}
