"""Build a v2 training corpus from ABC files, folders and music21's bundled folk collections.

The collections are read straight from the installed music21 package folder (found without importing
music21, which is slow to import; its ABC parser is not used either).  Output order is deterministic:
sources in the order given, files sorted by path, tunes in file order; exact duplicate token tunes are
kept once (the later copies count as "duplicate").
"""

from __future__ import annotations

import importlib.util
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from folkrnn_live.abc.convert import ConvertOptions, convert_tunes
from folkrnn_live.abc.parse import DROP_REASONS, decode_abc, split_tunes

#: music21's folk collections, each named by its folder under ``music21/corpus``.
COLLECTIONS = ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk", "essenFolksong")
ALL_MUSIC21 = "music21"
#: The session-dance collections (O'Neill's, Ryan's Mammoth, Aird's Airs, misc folk): the shipped model's
#: data.  Essen's German songs (rests between phrases, few repeats) are another music.
DANCE = ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
DANCE_NAME = "dance"
# The Essen K: names the tonic with a major signature; the mode is read from the notes.
_OPTIONS: dict[str, ConvertOptions] = {"essenFolksong": ConvertOptions(infer_mode=True)}
_ALLOWED = (
    f"an ABC file, a folder of *.abc files, {', '.join(COLLECTIONS)}, {DANCE_NAME} (all but essenFolksong) "
    f"or {ALL_MUSIC21} (all five)"
)


@dataclass(frozen=True)
class Source:
    """One named source: its files, and the conversion options its ABC needs."""

    name: str
    files: tuple[Path, ...]
    options: ConvertOptions = field(default_factory=ConvertOptions)


@dataclass
class SourceStats:
    name: str
    read: int = 0
    kept: int = 0
    folds: int = 0  # written-out repeats folded into |: ... :| in the kept tunes
    dropped: Counter[str] = field(default_factory=Counter)


@dataclass
class CorpusResult:
    tunes: list[tuple[str, ...]]
    stats: list[SourceStats]
    elapsed_s: float

    @property
    def total(self) -> SourceStats:
        t = SourceStats("total")
        for s in self.stats:
            t.read += s.read
            t.kept += s.kept
            t.folds += s.folds
            t.dropped.update(s.dropped)
        return t


def music21_corpus_dir() -> Path:
    spec = importlib.util.find_spec("music21")
    if spec is None or spec.origin is None:
        raise ValueError(f"music21 is not installed, so its collections cannot be read; allowed sources: {_ALLOWED}")
    return Path(spec.origin).parent / "corpus"


def resolve_source(spec: str) -> list[Source]:
    """A SOURCE argument to sources: a collection name, ``music21``, an ABC file or a folder."""
    if spec == ALL_MUSIC21:
        return [s for name in COLLECTIONS for s in resolve_source(name)]
    if spec == DANCE_NAME:
        return [s for name in DANCE for s in resolve_source(name)]
    if spec in COLLECTIONS:
        folder = music21_corpus_dir() / spec
        files = tuple(sorted(folder.rglob("*.abc")))
        if not files:
            raise ValueError(f"music21 collection {spec!r}: no ABC files in {folder}")
        return [Source(spec, files, _OPTIONS.get(spec, ConvertOptions()))]
    path = Path(spec)
    if path.is_dir():
        files = tuple(sorted(path.rglob("*.abc")))
        if not files:
            raise ValueError(f"source {spec!r}: folder has no *.abc files; allowed: {_ALLOWED}")
        return [Source(spec, files)]
    if path.is_file():
        return [Source(spec, (path,))]
    lower = {name.lower(): name for name in COLLECTIONS}
    hint = f" (did you mean {lower[spec.lower()]}?)" if spec.lower() in lower else ""
    raise ValueError(f"source {spec!r} is not a file, a folder or a music21 collection{hint}; allowed: {_ALLOWED}")


def _read_text(path: Path, source: str) -> str:
    data = path.read_bytes()
    if b"\0" in data:
        raise ValueError(f"source {source!r}: {path} is not a text file (ABC expected)")
    return decode_abc(data)


def build_corpus(specs: Sequence[str]) -> CorpusResult:
    """Convert every tune of every source; raises ValueError for a bad source (nothing is built)."""
    if not specs:
        raise ValueError(f"no SOURCE given; allowed: {_ALLOWED}")
    start = time.perf_counter()
    sources = [s for spec in specs for s in resolve_source(spec)]
    seen: set[tuple[str, ...]] = set()
    tunes: list[tuple[str, ...]] = []
    stats: list[SourceStats] = []
    for source in sources:
        st = SourceStats(source.name)
        stats.append(st)
        for path in source.files:
            abc = split_tunes(_read_text(path, source.name), str(path))
            if not abc:
                raise ValueError(f"source {source.name!r}: {path} has no ABC tunes (no X: field); allowed: {_ALLOWED}")
            for result in convert_tunes(abc, source.options):
                st.read += 1
                if result.tokens is None:
                    st.dropped[result.reason or "unparseable"] += 1
                elif result.tokens in seen:
                    st.dropped["duplicate"] += 1
                else:
                    seen.add(result.tokens)
                    tunes.append(result.tokens)
                    st.kept += 1
                    st.folds += result.folds
    return CorpusResult(tunes, stats, time.perf_counter() - start)


def corpus_text(tunes: Sequence[Sequence[str]]) -> str:
    """The corpus file: one tune per line, tokens separated by single spaces, a blank line between."""
    return "".join(" ".join(t) + "\n\n" for t in tunes)


def write_corpus(tunes: Sequence[Sequence[str]], path: str | Path) -> None:
    Path(path).write_text(corpus_text(tunes), encoding="utf-8")


def read_corpus(path: str | Path) -> list[list[str]]:
    """Tunes of a corpus file (blank-line separated, tokens space separated)."""
    text = Path(path).read_text(encoding="utf-8")
    return [block.split() for block in text.split("\n\n") if block.strip()]


def format_report(result: CorpusResult) -> str:
    """Tunes read, kept and dropped per source, dropped by reason per source, totals and time."""
    rows = [*result.stats, result.total]
    name_w = max(12, *(len(s.name) for s in rows))
    lines = [f"{'source':<{name_w}} {'read':>7} {'kept':>7} {'dropped':>8} {'folded':>7}"]
    for s in rows:
        if s is rows[-1]:
            lines.append("-" * (name_w + 33))
        lines.append(f"{s.name:<{name_w}} {s.read:>7} {s.kept:>7} {s.read - s.kept:>8} {s.folds:>7}")
    reasons = [r for r in DROP_REASONS if result.total.dropped[r]]
    if reasons:
        reason_w = max(len("dropped by reason"), *(len(r) for r in reasons))
        widths = [max(7, len(s.name)) for s in rows]

        def row(label: str, cells: list[str]) -> str:
            return f"{label:<{reason_w}} " + " ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True))

        lines.append("")
        lines.append(row("dropped by reason", [s.name for s in rows]))
        lines.extend(row(r, [str(s.dropped[r]) for s in rows]) for r in reasons)
    lines.append("")
    lines.append(f"elapsed {result.elapsed_s:.1f} s")
    return "\n".join(lines)


def split_corpus(
    tunes: Sequence[Sequence[str]], test_fraction: float, seed: int
) -> tuple[list[Sequence[str]], list[Sequence[str]]]:
    """(train, test): a seeded split by tune, order kept within each part.  The test tunes are for a
    held-out loss that neither training nor its early stop ever sees."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test fraction must be in range (0, 1), got {test_fraction}")
    order = list(range(len(tunes)))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(len(tunes) * test_fraction))
    test_idx = set(order[:n_test])
    train = [t for k, t in enumerate(tunes) if k not in test_idx]
    test = [t for k, t in enumerate(tunes) if k in test_idx]
    return train, test
