"""``folkrnn-live analyze --reproduce part1|part7|part8|part9``: each seed post's analyses re-run on
the loaded model, written as one Markdown page per post (``DIR/<part>/index.md``, figures and
number files in ``DIR/<part>/data/``).  Each of the post's figures is described beside ours, and
each number the post gives stands beside ours with one line on why they differ.

The posts studied Sturm et al.'s v2 model; ours is whatever model is loaded (by default the
project's own, trained on other tunes), so the pages compare readings, not weights.  The pages
themselves are in :mod:`.reproduce_posts`; this module holds what they share.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from folkrnn_live.analysis.sections import Section
from folkrnn_live.analysis.tasks import Context, Options, run_analysis
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.recording.recorder import Recorder
from folkrnn_live.recording.recording import Recording, load_recording
from folkrnn_live.sampler.voice import Voice

PARTS = ("part1", "part7", "part8", "part9")
POSTS = {
    "part1": ("002_06623feb2dc0b4aa.txt", "Making sense of the folk-rnn v2 model, part 1"),
    "part7": ("003_d31d97c00470769c.txt", "Making sense of the folk-rnn v2 model, part 7"),
    "part8": ("000_78d59e5b3ed041e8.txt", "Making sense of the folk-rnn v2 model, part 8"),
    "part9": ("001_48f4c6c7636a3b14.txt", "Making sense of the folk-rnn v2 model, part 9"),
}


@dataclass(frozen=True)
class Settings:
    """How much each page generates: ``quick`` for a smoke run (CI on a tiny model)."""

    quick: bool = False

    @property
    def seeds(self) -> tuple[int, ...]:
        return (1, 2) if self.quick else tuple(range(1, 9))

    @property
    def search(self) -> tuple[int, ...]:
        """Seeds tried when a page looks for a tune of the post's length."""
        return (1, 2) if self.quick else tuple(range(1, 13))

    @property
    def max_tokens(self) -> int:
        return 40 if self.quick else 400


@dataclass
class Page:
    """One post's page: what we ran, the figures side by side, the numbers side by side."""

    part: str
    intro: list[str] = field(default_factory=list)
    figures: list[tuple[str, list[str], str]] = field(default_factory=list)  # (post's figure, our files, why)
    numbers: list[tuple[str, str, str, str]] = field(default_factory=list)  # (quantity, post, ours, why)
    notes: list[str] = field(default_factory=list)
    code: list[tuple[str, str]] = field(default_factory=list)  # (caption, preformatted text)

    def figure(self, post: str, ours: Sequence[str], why: str) -> None:
        self.figures.append((post, list(ours), why))

    def number(self, quantity: str, post: str, ours: str, why: str) -> None:
        self.numbers.append((quantity, post, ours, why))

    def markdown(self, model_name: str, command: str) -> str:
        file, title = POSTS[self.part]
        md = [f"# {title}, reproduced", "",
              f"Post: `shared/seeds/{file}`. Model: {model_name}. Written by `{command}`.", ""]  # fmt: skip
        md += [*(p + "\n" for p in self.intro)]
        for caption, text in self.code:
            md += [f"{caption}:", "", "```text", text, "```", ""]
        md += ["## Figures", ""]
        for k, (post, ours, why) in enumerate(self.figures, 1):
            md += [f"### {k}. {post}", ""]
            md += [f"![{Path(f).stem}](data/{f})" for f in ours] or ["(no figure of ours: the tokens printed above)"]
            md += ["", f"*Why they differ:* {why}", ""]
        md += ["## Numbers", "", "| quantity | the post | ours | why they differ |", "| --- | --- | --- | --- |"]
        md += ["| " + " | ".join(cell(c) for c in row) + " |" for row in self.numbers]
        if self.notes:
            md += ["", "## Notes", "", *(f"- {n}" for n in self.notes)]
        return "\n".join(md) + "\n"


def cell(text: str) -> str:
    """A Markdown table cell: a ``|`` (bar tokens, |cos|) would end the cell, even inside code."""
    return text.replace("|", "\\|")


class Runner:
    """Records tunes and runs analyses into one page's ``data/`` folder."""

    def __init__(self, model: FolkRNN, data: Path, settings: Settings, progress: Callable[[str], None]) -> None:
        self.model, self.data, self.settings, self.say = model, data, settings, progress
        data.mkdir(parents=True, exist_ok=True)
        self.sections: dict[str, Section] = {}

    def pick_seed(self, prime: Sequence[str], length: int) -> tuple[int, list[str]]:
        """The seed (of ``settings.search``) whose tune ends, keeps its bars and comes closest to
        ``length`` tokens: the posts' figures were of one tune of a given length."""
        from folkrnn_live.abc.bars import check_bars

        voice = Voice(self.model, prime=list(prime), max_tokens=self.settings.max_tokens)
        best: tuple[float, int, list[str]] | None = None
        for s in self.settings.search:
            voice.start_tune(seed=s)
            toks = voice.generate()
            r = check_bars(toks)
            cost = abs(len(toks) - length) + (0 if toks[-1:] == ["</s>"] and r.n_ok == r.n_bars else 1000)
            if best is None or cost < best[0]:
                best = (cost, s, toks)
        assert best is not None
        self.say(f"seed {best[1]}: {len(best[2])} tokens (looked for about {length})")
        return best[1], best[2]

    def record(self, name: str, seed: int, prime: Sequence[str], stimulate: float | None = None) -> Recording:
        out = self.data / name
        if out.exists():
            import shutil

            shutil.rmtree(out)  # a rerun replaces its own recording
        voice = Voice(self.model, seed=seed, prime=list(prime), max_tokens=self.settings.max_tokens)
        if stimulate is not None:
            pitches = self.model.config.vocab.select("@pitch")
            voice.controls.set_force(1.0 - stimulate, [(pitches, stimulate)], None)
        meta = {"seed": seed, "prime": list(prime), "stimulate": stimulate, "n_tunes": 1}
        with Recorder(out, self.model, meta=meta, on_full="block") as rec:
            rec.attach(voice, name="a")
            voice.generate()
        return load_recording(out, tune=0)

    def run(self, name: str, rec: Recording | None, key: str | None = None, **options: Any) -> Section:
        """Run analysis ``name`` into ``data/``; the section is kept under ``key`` (default the name)."""
        self.say(f"{key or name}")
        opts = replace(Options(), **options)
        sec = run_analysis(name, Context(self.data, opts, rec, lambda: self.model))
        self.sections[key or name] = sec
        return sec


def run_reproduce(
    part: str,
    model: FolkRNN,
    out: Path,
    *,
    model_name: str = "the shipped model",
    model_meta: dict[str, Any] | None = None,
    quick: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``out/<part>/index.md`` (and its ``data/``); returns the page's path."""
    from folkrnn_live.analysis import reproduce_posts, reproduce_summary

    if part not in PARTS:
        raise ValueError(f"--reproduce must be one of {', '.join(PARTS)} or all; got {part!r}")
    say = progress or (lambda _m: None)
    page_dir = out / part
    runner = Runner(model, page_dir / "data", Settings(quick), lambda m: say(f"{part}: {m}"))
    builders = {**reproduce_posts.BUILDERS, **reproduce_summary.BUILDERS}
    page = builders[part](runner, model_meta or {})
    command = f"folkrnn-live analyze --reproduce {part} --out {out}" + (" --quick" if quick else "")
    index = page_dir / "index.md"
    index.write_text(page.markdown(model_name, command), encoding="utf-8")
    return index
