"""The ablation experiment of seeds 000 and 003: snip the units of one layer that carry the most
power at the bar period and see whether the model still "counts" (writes bars of the right
length), beside random units of the same count.

1. Reference: one tune per seed from the intact model, recording the layer's h.  Each unit's share
   of power in the band (default 8.7-9.3 steps) is averaged over these tunes; units are ranked by it.
2. For each fraction f: the top round(f * H) units by band share, and ``random_sets`` random sets of
   the same count, are snipped (mode ``out`` cuts what the unit sends onward, as in the posts) and
   one tune per seed is generated with the same seeds and settings.
3. Each tune's bars are checked by :func:`folkrnn_live.abc.bars.check_bars`; the figure is the
   share of right bars pooled over the seeds' tunes.
4. Per fraction, the band-selected and random snips are compared seed by seed (each tune's share of
   right bars; a tune without any bar scores 0) with a paired test and confidence intervals
   (:mod:`folkrnn_live.analysis.stats`).

The band defaults to the reference tunes' measured bar period (:mod:`.bar_period`), so a 6/8 or
3/4 prime is not analysed with the 4/4 band.

Layers are 0-based: ``layer=2`` is the posts' third LSTM layer.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from folkrnn_live.analysis.bar_period import band_around, pooled_bar_period
from folkrnn_live.analysis.selection import SnipMode, UnitSelection, random_units, top_by_band
from folkrnn_live.analysis.spectra import band_nfft, band_power_fraction, check_band, check_window
from folkrnn_live.analysis.stats import PairedComparison, paired_comparison
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.sampler.voice import Voice

Kind = Literal["none", "band", "random"]


@dataclass(frozen=True)
class TuneResult:
    seed: int
    tokens: tuple[str, ...]
    bars: int
    bars_ok: int

    @property
    def score(self) -> float:
        """This tune's share of right bars; 0 for a tune without a bar (it did not count at all)."""
        return self.bars_ok / self.bars if self.bars else 0.0


@dataclass(frozen=True)
class AblationPoint:
    """One snip set at one fraction, over all seeds."""

    fraction: float
    kind: Kind
    set_index: int  # which random set (0 for band / none)
    selection: UnitSelection
    tunes: tuple[TuneResult, ...]

    @property
    def count(self) -> int:
        return len(self.selection.units)

    @property
    def bars(self) -> int:
        return sum(t.bars for t in self.tunes)

    @property
    def share_ok(self) -> float:
        """Right bars / all bars over the seeds' tunes (0 when no tune has a bar)."""
        b = self.bars
        return sum(t.bars_ok for t in self.tunes) / b if b else 0.0

    @property
    def tunes_without_bars(self) -> int:
        return sum(t.bars == 0 for t in self.tunes)


@dataclass
class AblationResult:
    layer: int
    band: tuple[float, float]
    window: str
    mode: SnipMode
    seeds: tuple[int, ...]
    fractions: tuple[float, ...]
    band_share: np.ndarray  # [H] each unit's mean share of power in the band (reference tunes)
    points: list[AblationPoint] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    def curve(self, kind: Kind) -> list[tuple[float, float, float, float]]:
        """Per fraction: (fraction, mean, min, max) of share_ok over the sets of this kind (the
        unsnipped tunes stand for fraction 0 of both kinds)."""
        out = []
        for f in self.fractions:
            pts = [p for p in self.points if p.fraction == f and (p.kind == kind or p.kind == "none")]
            v = [p.share_ok for p in pts]
            out.append((f, float(np.mean(v)), float(np.min(v)), float(np.max(v))))
        return out

    def seed_scores(self, kind: Kind, fraction: float) -> list[float]:
        """Per seed (in ``seeds`` order): the tune's score, averaged over the sets of this kind."""
        pts = [p for p in self.points if p.fraction == fraction and p.kind == kind]
        if not pts:
            raise ValueError(f"no {kind} snips at fraction {fraction}")
        return [float(np.mean([p.tunes[j].score for p in pts])) for j in range(len(self.seeds))]

    def comparisons(self) -> list[PairedComparison]:
        """Band-selected against random snips at every fraction above 0, paired by seed."""
        return [
            paired_comparison(f, self.seed_scores("band", f), self.seed_scores("random", f))
            for f in self.fractions
            if f > 0
        ]

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "fraction": p.fraction,
                "kind": p.kind,
                "set": p.set_index,
                "units": p.count,
                "share_ok": round(p.share_ok, 6),
                "bars": p.bars,
                "tunes": len(p.tunes),
                "tunes_without_bars": p.tunes_without_bars,
                "per_seed_share_ok": " ".join(
                    f"{t.bars_ok / t.bars:.4f}" if t.bars else "nan" for t in p.tunes
                ),
            }
            for p in self.points
        ]

    def to_json(self, with_tunes: bool = True) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "band": list(self.band),
            "window": self.window,
            "mode": self.mode,
            "seeds": list(self.seeds),
            "fractions": list(self.fractions),
            "settings": self.settings,
            "band_share": [round(float(x), 6) for x in self.band_share],
            "rows": self.rows(),
            "comparisons": [c.to_json() for c in self.comparisons()],
            "selections": [
                {"fraction": p.fraction, "kind": p.kind, "set": p.set_index, **p.selection.to_json()}
                for p in self.points
                if p.kind != "none"
            ],
            "tunes": [
                {
                    "fraction": p.fraction,
                    "kind": p.kind,
                    "set": p.set_index,
                    "seed": t.seed,
                    "bars": t.bars,
                    "bars_ok": t.bars_ok,
                    "tokens": " ".join(t.tokens),
                }
                for p in self.points
                for t in p.tunes
            ]
            if with_tunes
            else [],
        }

    def write_csv(self, path: str | Path) -> Path:
        rows = self.rows()
        p = Path(path)
        with open(p, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return p


def _check_bars(tokens: Sequence[str]) -> tuple[int, int]:
    from folkrnn_live.abc.bars import check_bars  # the project's bar checker (one definition)

    r = check_bars(list(tokens))
    return r.n_bars, r.n_ok


def _generate(
    voice: Voice, seed: int, prime: Sequence[str], record_layer: int | None
) -> tuple[list[str], np.ndarray | None]:
    rows: list[np.ndarray] = []
    listener = None
    if record_layer is not None:

        def listener(r: Any) -> None:
            rows.append(np.array(r.activations.h[record_layer][0], dtype=np.float64))

        voice.listeners.append(listener)
    voice.capture = record_layer is not None
    try:
        voice.start_tune(seed=seed, prime=list(prime))
        tokens = voice.generate()
    finally:
        if listener is not None:
            voice.listeners.remove(listener)
    return tokens, (np.stack(rows) if rows else None)


def _reference_tunes(
    voice: Voice, seeds: Sequence[int], prime: Sequence[str], layer: int
) -> tuple[list[TuneResult], list[np.ndarray]]:
    """One tune per seed from the intact model, with the layer's h of each (when 2 steps or more)."""
    ref: list[TuneResult] = []
    states = []
    for s in seeds:
        tokens, h = _generate(voice, int(s), prime, layer)
        nb, ok = _check_bars(tokens)
        ref.append(TuneResult(int(s), tuple(tokens), nb, ok))
        if h is not None and len(h) >= 2:
            states.append(h)
    return ref, states


def run_ablation(
    model: FolkRNN,
    layer: int,
    fractions: Sequence[float],
    seeds: Sequence[int],
    *,
    band: tuple[float, float] | None = None,
    window_name: str = "hann",
    pad_to: int | None = None,
    mode: SnipMode = "out",
    random_sets: int = 1,
    random_seed: int = 0,
    prime: Sequence[str] = (),
    temperature: float = 1.0,
    max_tokens: int = 1000,
) -> AblationResult:
    """Run the experiment (see the module docstring).  ``pad_to``: DFT length for the band shares
    (default :func:`~folkrnn_live.analysis.spectra.band_nfft`: at least 1024, so the narrow band
    holds several bins).  ``band`` None: the reference tunes' measured bar period ± 0.3 steps."""
    L, H = model.config.num_layers, model.config.hidden_size
    if not 0 <= layer < L:
        raise ValueError(f"layer must be in range 0..{L - 1} (0 is the first LSTM layer); got {layer}")
    check_window(window_name)
    if band is not None:
        band = check_band(band)
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    if mode not in ("out", "all"):
        raise ValueError(f"snip mode must be 'out' or 'all'; got {mode!r}")
    fr = tuple(sorted({float(f) for f in fractions} | {0.0}))
    if any(not 0.0 <= f <= 1.0 for f in fr):
        raise ValueError(f"fractions must be in range 0..1; got {list(fractions)}")
    if random_sets < 1:
        raise ValueError(f"random_sets must be at least 1; got {random_sets}")
    voice = Voice(model, seed=int(seeds[0]), temperature=temperature, max_tokens=max_tokens)

    # 1. Reference tunes (fraction 0) with the layer's h recorded.
    ref, states = _reference_tunes(voice, seeds, prime, layer)
    if not states:
        raise ValueError("every reference tune is shorter than 2 steps; no spectrum to rank units by")
    period = pooled_bar_period([t.tokens for t in ref])
    if band is None:
        band = band_around(period)
    share = np.mean([band_power_fraction(h, band, window_name, band_nfft(len(h), pad_to)) for h in states], axis=0)
    crit = {"window": window_name, "pad_to": pad_to, "ranked_over_seeds": list(map(int, seeds))}
    result = AblationResult(
        layer,
        band,
        window_name,
        mode,
        tuple(int(s) for s in seeds),
        fr,
        share,
        settings={"prime": list(prime), "temperature": temperature, "max_tokens": max_tokens,
                  "random_sets": random_sets, "random_seed": random_seed, "pad_to": pad_to,
                  "measured_bar_period": period},
    )
    result.points.append(
        AblationPoint(0.0, "none", 0, UnitSelection(layer, (), mode, {"by": "none"}), tuple(ref))
    )

    # 2. Snipped runs.
    for f in fr:
        if f == 0.0:
            continue
        count = round(f * H)
        sels: list[tuple[Kind, int, UnitSelection]] = [
            ("band", 0, top_by_band(share, layer, count, band, mode, **crit))
        ]
        for r in range(random_sets):
            sels.append(("random", r, random_units(H, count, layer, seed=random_seed + r, mode=mode)))
        for kind, idx, sel in sels:
            tunes = _snipped_tunes(voice, sel, seeds, prime)
            result.points.append(AblationPoint(f, kind, idx, sel, tunes))
    return result


def _snipped_tunes(
    voice: Voice, sel: UnitSelection, seeds: Sequence[int], prime: Sequence[str]
) -> tuple[TuneResult, ...]:
    """One tune per seed with ``sel``'s units snipped (restored afterwards)."""
    voice.controls.set_snip(sel.layer, list(sel.units), sel.mode)
    tunes = []
    for s in seeds:
        tokens, _ = _generate(voice, int(s), prime, None)
        nb, ok = _check_bars(tokens)
        tunes.append(TuneResult(int(s), tuple(tokens), nb, ok))
    voice.controls.restore(sel.layer)
    return tuple(tunes)


def parse_seeds(text: str) -> list[int]:
    """``1..8`` (inclusive range), ``1,2,5`` or a mix (``1..4,10``)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            if ".." in part:
                a, b = part.split("..", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError as exc:
            raise ValueError(
                f"seeds must be integers or ranges like 1..8, comma separated; got {text!r}"
            ) from exc
    if not out or any(s < 0 for s in out):
        raise ValueError(f"seeds must be integers or ranges like 1..8, comma separated; got {text!r}")
    if len(out) > 10_000:
        raise ValueError(f"seeds: at most 10000; got {len(out)}")
    return out
