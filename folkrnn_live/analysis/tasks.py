"""Every analysis by name: what it needs (a recorded tune, a model, or nothing), its options, and
how to run it into a folder.  ``folkrnn-live analyze`` runs the ones named; the report runs them
all on one tune.  The analyses themselves live in ``tasks_*`` modules.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from folkrnn_live.analysis import spectra as sp
from folkrnn_live.analysis import windows as wi
from folkrnn_live.analysis.bar_period import POSTS_BAND, band_around, band_text, bar_period
from folkrnn_live.analysis.sections import Section
from folkrnn_live.analysis.tasks_activity import distributions_task, heatmaps_task, posterior_task
from folkrnn_live.analysis.tasks_gramians import gramians_task
from folkrnn_live.analysis.tasks_model import ablation_task, params_task
from folkrnn_live.analysis.tasks_spectral import selection_task, spectra_task, windows_task
from folkrnn_live.analysis.tasks_units import projections_task, softmax_task, traces_task
from folkrnn_live.model.network import FolkRNN
from folkrnn_live.model.step import GATE_NAMES
from folkrnn_live.recording.recording import Recording

__all__ = ["ANALYSES", "Analysis", "Context", "Options", "Section", "find_model", "run_analysis"]


@dataclass
class Options:
    """The settings of every analysis (the CLI's options).  Layers are 0-based."""

    gate: str = "h"  # activation for heatmaps, distributions and spectra
    layer: int | None = None  # select, ablation: default the last layer; heatmaps, gramians: default all
    window: str = "hann"
    pad_to: int | None = None  # zero padding of the spectra's DFT
    remove_mean: bool = True
    band: tuple[float, float] | None = None  # periods in steps; None: the tune's measured bar period ± 0.3
    min_fraction: float = 0.05
    random_sets: int | None = None  # select: default 3; ablation: default 1
    osc_voice: str | None = None  # voice in printed snip commands (default: the recording's)
    length: int | None = None  # windows: sequence length (default: the tune's, else 147)
    periods: tuple[float, ...] = wi.SEED_PERIODS
    fractions: tuple[float, ...] = (0.0, 0.2, 0.27, 0.33)
    seeds: tuple[int, ...] = tuple(range(1, 9))
    mode: str = "out"
    prime: tuple[str, ...] = ()
    temperature: float = 1.0
    max_tokens: int = 1000
    directions: int = 5
    units: tuple[tuple[int, int], ...] = ()  # traces: (layer, unit) pairs; () the most bar-correlated
    def check(self) -> None:
        """Raise ValueError naming the option and what is allowed."""
        if self.gate not in GATE_NAMES:
            raise ValueError(f"--gate must be one of {', '.join(GATE_NAMES)}; got {self.gate!r}")
        if self.window not in sp.WINDOWS:
            raise ValueError(f"--window must be one of {', '.join(sp.WINDOWS)}; got {self.window!r}")
        if self.band is not None:
            lo, hi = self.band
            if not (math.isfinite(lo) and math.isfinite(hi) and 2.0 <= lo < hi):
                raise ValueError(
                    f"--band must be two periods LOW,HIGH in steps with 2 <= LOW < HIGH; got {lo:g},{hi:g}"
                )
        if any(not (p >= 2.0) for p in self.periods):
            raise ValueError(f"--periods must be at least 2 steps each (or inf); got {list(self.periods)}")
        if any(not 0.0 <= f <= 1.0 for f in self.fractions):
            raise ValueError(f"--fractions must be in range 0..1; got {list(self.fractions)}")
        if self.mode not in ("out", "all"):
            raise ValueError(f"--mode must be one of out, all; got {self.mode!r}")


@dataclass
class Context:
    """What an analysis runs on: the output folder, the options, the recorded tune (None for the
    analyses that need none) and a loader for the model (called only by those that need one)."""

    out: Path
    options: Options = field(default_factory=Options)
    rec: Recording | None = None
    model: Callable[[], FolkRNN] | None = None

    def recording(self) -> Recording:
        if self.rec is None:
            raise ValueError("this analysis needs a recording: folkrnn-live analyze RECORDING NAME ...")
        return self.rec

    def the_model(self) -> FolkRNN:
        if self.model is None:
            raise ValueError("this analysis needs a model: pass --model DIR")
        return self.model()

    def band(self) -> tuple[tuple[float, float], str]:
        """The band of periods and a line saying where it comes from: ``--band``, else the tune's
        measured bar period ± 0.3 steps (the posts' 4/4 band when the tune has under two bars)."""
        if self.options.band is not None:
            b = self.options.band
            return b, f"band {b[0]:g}-{b[1]:g} steps (set by --band)"
        if self.rec is None:
            return POSTS_BAND, f"band {POSTS_BAND[0]:g}-{POSTS_BAND[1]:g} steps (no recording: the posts' 4/4 band)"
        period = bar_period(self.rec.tokens)
        b = band_around(period)
        return b, band_text(b, period)


Needs = Literal["recording", "model", "nothing", "recording+model"]


@dataclass(frozen=True)
class Analysis:
    name: str
    needs: Needs
    summary: str
    run: Callable[[Context], Section]


def _voice(c: Context) -> str:
    return c.options.osc_voice or (c.rec.voice if c.rec is not None else "a")


def _layers(c: Context) -> list[int] | None:
    return None if c.options.layer is None else [c.options.layer]


def _windows(c: Context) -> Section:
    o = c.options
    n = o.length or (c.rec.n_steps if c.rec is not None and c.rec.n_steps >= 8 else 147)
    return windows_task(c.out, n, o.periods)


def _ablation(c: Context) -> Section:
    from folkrnn_live.analysis.ablation import run_ablation

    o, model = c.options, c.the_model()
    res = run_ablation(
        model,
        model.config.num_layers - 1 if o.layer is None else o.layer,
        o.fractions,
        o.seeds,
        band=o.band if o.band is not None or c.rec is None else c.band()[0],
        window_name=o.window,
        pad_to=o.pad_to,
        mode=o.mode,  # type: ignore[arg-type]  # checked by Options.check
        random_sets=o.random_sets or 1,
        prime=o.prime,
        temperature=o.temperature,
        max_tokens=o.max_tokens,
    )
    return ablation_task(res, c.out)


_LIST = [
    Analysis("posterior", "recording", "token probabilities x step, bar lines marked",
             lambda c: posterior_task(c.recording(), c.out)),
    Analysis("heatmaps", "recording", "unit x step image of --gate per layer",
             lambda c: heatmaps_task(c.recording(), c.out, c.options.gate, _layers(c))),
    Analysis("distributions", "recording", "histograms of --gate per layer, sorted max magnitude per unit",
             lambda c: distributions_task(c.recording(), c.out, c.options.gate)),
    Analysis("spectra", "recording", "per-unit magnitude spectra and mean normalised spectrum per layer",
             lambda c: spectra_task(c.recording(), c.out, c.options.window, c.options.pad_to, c.options.remove_mean,
                                    c.options.gate, c.band()[0])),
    Analysis("windows", "nothing", "main-lobe support and first sidelobes of both windows", _windows),
    Analysis("select", "recording", "units with power in --band, as snip commands, and random sets",
             lambda c: selection_task(c.recording(), c.out, c.options.layer, c.band()[0], c.options.min_fraction,
                                      c.options.window, c.options.pad_to, _voice(c), c.options.random_sets or 3)),
    Analysis("gramians", "recording", "one-hot, softmax L1, magnitude Gramians per layer, gate inner products",
             lambda c: gramians_task(c.recording(), c.out, _layers(c))),
    Analysis("params", "model", "output SVD and loadings, input column norms and Gramians, bias correlation",
             lambda c: params_task(c.the_model(), c.out, c.options.directions)),
    Analysis("ablation", "model", "right bars vs fraction snipped by band power, beside random units", _ablation),
    Analysis("traces", "recording", "single units against bar tokens; units ranked by correlation with bars in/out",
             lambda c: traces_task(c.recording(), c.out, list(c.options.units) or None)),
    Analysis("softmax", "model", "how a change of one softmax input moves a token's probability (Δsoftmax)",
             lambda c: softmax_task(c.rec, c.the_model(), c.out)),
    Analysis("projections", "recording+model", "last layer's h on the output matrix's singular directions",
             lambda c: projections_task(c.recording(), c.the_model(), c.out)),
]  # fmt: skip
ANALYSES: dict[str, Analysis] = {a.name: a for a in _LIST}


def run_analysis(name: str, ctx: Context) -> Section:
    if name not in ANALYSES:
        raise ValueError(f"analysis must be one of {', '.join(ANALYSES)}; got {name!r}")
    ctx.options.check()
    ctx.out.mkdir(parents=True, exist_ok=True)
    return ANALYSES[name].run(ctx)


def find_model(model_dir: str | Path | None, meta: dict[str, Any] | None = None) -> FolkRNN:
    """The model for parameter analyses and the ablation: ``model_dir``, else the directory the
    recording names (``meta`` is its meta.json), else the shipped model.  With a recording, the
    model must be the one it was made with (same output-layer fingerprint)."""
    from folkrnn_live.model.checkpoint import load_default_or
    from folkrnn_live.recording.recorder import model_fingerprint

    rec_meta = meta or {}
    user = rec_meta.get("meta") if isinstance(rec_meta.get("meta"), dict) else {}
    named = user.get("model_dir") if isinstance(user, dict) else None
    if model_dir is None and isinstance(named, str) and Path(named).is_dir():
        model_dir = named
    model = load_default_or(model_dir).model
    want = rec_meta.get("model", {}).get("fingerprint") if isinstance(rec_meta.get("model"), dict) else None
    if want and model_fingerprint(model) != want:
        where = model_dir or "the shipped model"
        raise ValueError(
            f"--model: {where} is not the model this recording was made with (fingerprint "
            f"{model_fingerprint(model)}, the recording's {want}); pass the recording's model directory"
        )
    return model
