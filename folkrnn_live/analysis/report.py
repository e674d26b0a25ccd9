"""One folder with every analysis of one recorded tune, and an index page (``index.html`` and
``index.md``) a researcher can open: figures inline, numbers, the tune's tokens, the commands used.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from folkrnn_live.analysis import spectra as sp
from folkrnn_live.analysis.sections import Section
from folkrnn_live.analysis.tasks import ANALYSES, Context, Options, run_analysis
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.recording.recording import Recording, load_recording


def _bar_summary(tokens: list[str]) -> str:
    from folkrnn_live.abc.bars import check_bars

    r = check_bars(tokens)
    if r.meter is None:
        return f"{r.n_bars} bars; no meter token, so bar lengths were not checked."
    wrong = ", ".join(f"bar {b.index} ({b.reason}, {b.length} of {b.expected})" for b in r.wrong[:8])
    return (
        f"{r.n_ok} of {r.n_bars} bars have the right length for M:{r.meter[0]}/{r.meter[1]}"
        + (f"; wrong: {wrong}" if wrong else "")
        + "."
    )


#: Report order; the spectra run once per window, and once more with the means kept.
REPORT_ORDER = (
    "posterior", "heatmaps", "distributions", "spectra", "windows", "select", "traces", "gramians", "params",
    "softmax", "projections", "ablation",
)


def recording_prime(rec: Recording) -> tuple[str, ...]:
    """The prime the tune was made with: the one ``record`` stored, else the tokens injected at the
    tune's start (the server's prime), else its leading meter and key tokens."""
    user = rec.meta.get("meta", {})
    stored = user.get("prime") if isinstance(user, dict) else None
    if isinstance(stored, list) and stored and all(isinstance(t, str) for t in stored):
        return tuple(stored)
    toks = rec.tokens
    lead = 0
    while lead < len(toks) and bool(rec.injected[lead]):
        lead += 1
    if lead:
        return tuple(toks[:lead])
    return tuple(t for t in toks[:2] if t.startswith(("M:", "K:")))


def make_report(
    recording: str | Path | Recording,
    out_dir: str | Path,
    *,
    tune: int = 0,
    voice: str | None = None,
    options: Options | None = None,
    model: FolkRNN | Callable[[], FolkRNN] | None = None,
    commands: Sequence[str] = (),
    skip: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Run every analysis on tune ``tune`` of the recording (in recording order) into ``out_dir``
    and write ``index.html`` and ``index.md``; returns the path of ``index.html``.  ``model`` (or a
    loader of it) is needed by the parameter analyses and the ablation, which are left out with a
    note without one; ``skip`` names analyses to leave out (e.g. the ablation, which generates
    tunes)."""
    opts = options or Options()
    opts.check()
    unknown = [s for s in skip if s not in ANALYSES]
    if unknown:
        raise ValueError(f"--skip must name analyses among {', '.join(ANALYSES)}; got {unknown}")
    # A Recording passed in may hold every tune, or be one tune already loaded with tune=.
    if isinstance(recording, Recording):
        rec = recording if len(recording.tune_ids) == 1 else recording.tune_view(tune)
    else:
        rec = load_recording(recording, voice, tune=tune)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _m: None)
    cached: list[FolkRNN] = []

    def load_model() -> FolkRNN:
        if not cached:
            if model is None:
                raise ValueError("no model")
            cached.append(model if isinstance(model, FolkRNN) else model())
        return cached[0]

    if not opts.prime:  # the ablation generates its tunes with this tune's prime (its meter and mode)
        opts = replace(opts, prime=recording_prime(rec))
    ctx = Context(out, opts, rec, load_model)
    band_line = ctx.band()[1]
    sections: list[Section] = []
    for name in REPORT_ORDER:
        a = ANALYSES[name]
        if name in skip:
            sections.append(Section(name, a.summary.capitalize(), ["Left out (--skip)."]))
            continue
        if a.needs in ("model", "recording+model") and model is None:
            sections.append(Section(name, a.summary.capitalize(), ["Left out: no model (pass --model DIR)."]))
            continue
        if a.needs == "recording" and rec.n_steps < 2 and name != "posterior":
            sections.append(Section(name, a.summary.capitalize(), [f"Left out: the tune has {rec.n_steps} steps."]))
            continue
        # The spectra: both windows with the means removed, then Hann with them kept (seed 003's figure).
        runs = [(w, True) for w in sp.WINDOWS] + [("hann", False)] if name == "spectra" else [(opts.window, None)]
        for w, removed in runs:
            say(f"{name} ({w}{'' if removed is not False else ', means kept'})" if name == "spectra" else name)
            ctx.options = replace(opts, window=w, remove_mean=opts.remove_mean if removed is None else removed)
            sections.append(run_analysis(name, ctx))
    head = _header(rec, tune, commands)
    head["facts"].append(("band of periods", band_line))
    (out / "index.md").write_text(_markdown(head, sections), encoding="utf-8")
    index = out / "index.html"
    index.write_text(_html(head, sections), encoding="utf-8")
    return index


def _header(rec: Recording, tune: int, commands: Sequence[str]) -> dict[str, Any]:
    user = rec.meta.get("meta", {})
    cmds = [c for c in [user.get("command") if isinstance(user, dict) else None, *commands] if c]
    if not commands:
        cmds.append("(made by a library call to folkrnn_live.analysis.report.make_report)")
    seed = int(rec.seed[0]) if rec.n_steps else None
    ctrl = rec.controls[0] if rec.controls else None
    return {
        "title": f"folk-rnn activation report: {rec.path.name}, voice {rec.voice}, tune {tune}",
        "facts": [
            ("recording", str(rec.path)),
            ("voice", rec.voice),
            ("tune", f"{tune} (0-based, in recording order; seed {seed})"),
            ("steps", str(rec.n_steps)),
            ("model", f"{rec.num_layers} layers x {rec.hidden_size} units, {len(rec.vocab)} tokens"),
            ("recorded", str(rec.meta.get("created", "?"))),
            ("controls at the first step", json.dumps(ctrl, sort_keys=True)),
            ("recording metadata", json.dumps(user, sort_keys=True)[:800]),
        ],
        "tokens": " ".join(rec.tokens),
        "bars": _bar_summary(rec.tokens) if rec.n_steps else "no steps",
        "commands": cmds,
    }


def _markdown(head: dict[str, Any], sections: list[Section]) -> str:
    md = [f"# {head['title']}", ""]
    md += [f"- **{k}**: {v}" for k, v in head["facts"]]
    md += [
        "",
        "## The tune",
        "",
        "```",
        head["tokens"],
        "```",
        "",
        head["bars"],
        "",
        "## Commands",
        "",
        "```",
        *head["commands"],
        "```",
        "",
    ]
    md += ["Layers are 0-based: layer 0 is the first LSTM layer.", "", "## Contents", ""]
    md += [f"- [{s.title}](#{s.key})" for s in sections]
    for s in sections:
        md += ["", f'<a id="{s.key}"></a>', f"## {s.title}", ""]
        for t in s.text:
            md += [t, ""]
        md += [f"**Warning:** {w}" + "\n" for w in s.warnings]
        for c in s.code:
            md += ["```", c.rstrip("\n"), "```", ""]
        for header, rows in s.tables:
            md += ["| " + " | ".join(c.replace("|", "\\|") for c in header) + " |", "|" + " --- |" * len(header)]
            md += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]  # a bar token ends a cell
            md.append("")
        for f, cap in s.images:
            md += [f"![{cap}]({f})", f"*{cap}*", ""]
        if s.files:
            md.append("Numbers: " + ", ".join(f"[{f}]({f})" for f in s.files))
    return "\n".join(md) + "\n"


def _html(head: dict[str, Any], sections: list[Section]) -> str:
    e = html.escape
    h = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{e(head['title'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.4}"
        "img{max-width:100%;border:1px solid #ddd}pre{background:#f6f6f6;padding:.6em;white-space:pre-wrap;"
        "word-break:break-all}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
        "padding:2px 8px;font-size:90%}figure{margin:1em 0}figcaption{color:#555;font-size:90%}</style>",
        "</head><body>",
        f"<h1>{e(head['title'])}</h1>",
        "<ul>",
    ]
    h += [f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in head["facts"]]
    h += [
        "</ul>",
        "<h2>The tune</h2>",
        f"<pre>{e(head['tokens'])}</pre>",
        f"<p>{e(head['bars'])}</p>",
        "<h2>Commands</h2>",
        "<pre>" + e("\n".join(head["commands"])) + "</pre>",
        "<p>Layers are 0-based: layer 0 is the first LSTM layer.</p>",
        "<h2>Contents</h2><ul>",
    ]
    h += [f"<li><a href='#{s.key}'>{e(s.title)}</a></li>" for s in sections]
    h.append("</ul>")
    for s in sections:
        h.append(f"<h2 id='{s.key}'>{e(s.title)}</h2>")
        h += [f"<p>{_inline(t)}</p>" for t in s.text]
        h += [f"<p><b>Warning:</b> {_inline(w)}</p>" for w in s.warnings]
        h += [f"<pre>{e(c)}</pre>" for c in s.code]
        for header, rows in s.tables:
            h.append("<table><tr>" + "".join(f"<th>{e(c)}</th>" for c in header) + "</tr>")
            h += ["<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows]
            h.append("</table>")
        for f, cap in s.images:
            h.append(
                f"<figure><img src='{e(f)}' alt='{e(cap)}' loading='lazy'><figcaption>{e(cap)}</figcaption></figure>"
            )
        if s.files:
            h.append("<p>Numbers: " + ", ".join(f"<a href='{e(f)}'>{e(f)}</a>" for f in s.files) + "</p>")
    h.append("</body></html>")
    return "\n".join(h) + "\n"


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    parts = html.escape(text).split("`")
    return "".join(p if i % 2 == 0 else f"<code>{p}</code>" for i, p in enumerate(parts))
