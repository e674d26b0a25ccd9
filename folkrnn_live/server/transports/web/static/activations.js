// The activation strip: the last layer's hidden state scrolling as a heatmap (one column a step,
// one row per unit; blue -1, white 0, red +1) and the next token's top-10 probabilities.

function decode(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export class Strip {
  constructor(canvas, topList) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.top = topList;
    this.column = null;
  }

  add(msg) {
    const h = decode(msg.hidden);  // bytes: 0 = -1, 255 = +1
    const { width, height } = this.canvas;
    if (!this.column || this.column.height !== height) this.column = this.ctx.createImageData(1, height);
    const px = this.column.data;
    const per = h.length / height;  // units per pixel row (512 units in 128 rows: the mean of 4)
    for (let y = 0; y < height; y++) {
      let sum = 0;
      for (let k = Math.floor(y * per); k < Math.floor((y + 1) * per); k++) sum += h[k];
      const v = sum / Math.max(1, Math.floor((y + 1) * per) - Math.floor(y * per)) / 127.5 - 1;  // -1..1
      const a = Math.min(1, Math.abs(v));
      const o = y * 4;
      px[o] = v > 0 ? 255 : Math.round(255 * (1 - a));
      px[o + 1] = Math.round(255 * (1 - a));
      px[o + 2] = v < 0 ? 255 : Math.round(255 * (1 - a));
      px[o + 3] = 255;
    }
    this.ctx.drawImage(this.canvas, -2, 0);  // scroll left by one step (2 px)
    this.ctx.putImageData(this.column, width - 2, 0);
    this.ctx.putImageData(this.column, width - 1, 0);
    this.top.replaceChildren(...msg.top.map(([tok, p]) => {
      const li = document.createElement("li");
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.style.width = `${Math.round(p * 100)}%`;
      li.append(bar, document.createTextNode(`${tok} ${p.toFixed(3)}`));
      return li;
    }));
  }
}
