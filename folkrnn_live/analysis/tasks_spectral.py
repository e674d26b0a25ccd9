"""Spectral analyses of one tune (seed posts 000 and 003): per-unit magnitude spectra, the mean
normalised spectrum per layer, the analysis windows' main lobes and sidelobes, and the units with
power in a band of periods, in the form the server's snip command takes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from folkrnn_live.analysis import plots, plots_units
from folkrnn_live.analysis import spectra as sp
from folkrnn_live.analysis import windows as wi
from folkrnn_live.analysis.bar_period import few_units_warning
from folkrnn_live.analysis.sections import Section, check_layers, need_steps, period_label, write_csv, write_json
from folkrnn_live.analysis.selection import UnitSelection, random_units, select_by_band
from folkrnn_live.recording.recording import Recording


def spectra_task(
    rec: Recording,
    out: Path,
    window_name: str = "hann",
    pad_to: int | None = None,
    remove_mean: bool = True,
    gate: str = "h",
    band: tuple[float, float] = (8.7, 9.3),
) -> Section:
    """Each unit's magnitude spectrum per layer (figure and CSV), each unit's peak period and share
    of power in ``band``, and the mean normalised spectrum per layer with its standard error."""
    need_steps(rec)
    sp.check_window(window_name)
    rec.gate(gate)
    out.mkdir(parents=True, exist_ok=True)
    nfft = rec.n_steps if pad_to is None else pad_to
    # Kept-mean spectra (the post's layer means) go to their own files beside the mean-removed ones.
    name = window_name if remove_mean else f"{window_name}_keepmean"
    sec = Section(
        f"spectra_{name}",
        f"Magnitude spectra ({window_name} window{'' if remove_mean else ', means kept'})",
        [
            f"DFT magnitude of each unit's `{gate}` sequence over the tune ({rec.n_steps} steps), "
            f"periodic {window_name} window, mean {'removed' if remove_mean else 'kept'}, "
            f"{'no zero padding' if pad_to is None else f'zero padded to {pad_to}'}; x is the period in steps. "
            f"Units are sorted by their peak period; `spectra_{name}_peaks.csv` names them, with each "
            f"unit's share of power in periods {band[0]}-{band[1]} steps (DFT of "
            f"{sp.band_nfft(rec.n_steps, pad_to)} points)."
        ],
    )
    layers = [rec.gate(gate, k) for k in range(rec.num_layers)]
    peak_rows = []
    for k, a in enumerate(layers):
        s = sp.magnitude_spectra(a, window_name, nfft, remove_mean)
        img = plots.unit_spectra(s, out / f"spectra_{name}_layer{k}.png", f"{gate} spectra, layer {k}")
        sec.images.append((img.name, f"layer {k}"))
        sec.files.append(
            write_csv(
                out / f"spectra_{name}_layer{k}.csv",
                ["unit", *[period_label(p) for p in s.periods]],
                [[u, *[f"{v:.6g}" for v in s.magnitude[u]]] for u in range(s.magnitude.shape[0])],
            )
        )
        share = sp.band_power_fraction(a, band, window_name, sp.band_nfft(rec.n_steps, pad_to), remove_mean)
        pk = s.peak_periods()
        peak_rows += [[k, u, period_label(pk[u]), f"{share[u]:.6f}"] for u in range(len(pk))]
    sec.files.append(
        write_csv(
            out / f"spectra_{name}_peaks.csv",
            ["layer", "unit", "peak_period", f"share_{band[0]}_{band[1]}"],
            peak_rows,
        )
    )
    means = sp.layer_mean_spectra(layers, rec.probs, window_name, nfft, remove_mean)
    kept = "removed" if remove_mean else "kept"
    title = f"Mean normalised {gate} spectra per layer ± 1 SEM ({window_name}, means {kept})"
    img = plots.mean_spectra(means, out / f"mean_spectra_{name}.png", title, mean_removed=remove_mean)
    sec.images.append(
        (
            img.name,
            "mean normalised spectra per layer (layers normalised by layer 0's largest magnitude, "
            "the softmax by its own), ±1 standard error of the mean shaded"
            + ("; DC left out: each sequence's mean was removed, so DC holds nothing by construction"
               if remove_mean else "; means kept, as in seed 003's figure: most power at DC"),
        )
    )  # fmt: skip
    m0 = next(iter(means.values()))
    rows = [
        [name, stat, *[f"{v:.4f}" for v in arr]]
        for name, m in means.items()
        for stat, arr in (("mean_db", m.mean_db), ("lower_db", m.lower_db), ("upper_db", m.upper_db))
    ]
    header = ["series", "stat", *[period_label(p) for p in m0.periods]]
    sec.files.append(write_csv(out / f"mean_spectra_{name}.csv", header, rows))
    return sec


def windows_task(out: Path, n: int = 147, periods: Sequence[float] = wi.SEED_PERIODS) -> Section:
    """Both windows' properties for length n, their responses, and seed 003's two tables."""
    props = {w: wi.window_properties(w, n) for w in ("rect", "hann")}
    rows = wi.support_table(tuple(periods), n)
    f1 = write_json(
        out / "windows.json",
        {"n": n, "properties": {w: p.to_json() for w, p in props.items()}, "tables": [r.to_json() for r in rows]},
    )
    bins = np.linspace(-6, 6, 1201)
    curves = {w: (bins, 20 * np.log10(np.maximum(wi.response(w, n, np.abs(bins) / n), 1e-10))) for w in props}
    img = plots_units.window_responses(curves, out / "windows.png", n)
    prow = [
        [
            w,
            f"{p.highest_sidelobe_db:.2f}",
            f"{p.width_6db_bins:.3f}",
            f"{p.width_3db_bins:.3f}",
            f"{p.first_null_bins:.3f}",
            f"{p.enbw_bins:.3f}",
            f"{p.coherent_gain:.3f}",
            f"{p.first_sidelobe_bins:.3f}",
        ]
        for w, p in props.items()
    ]
    head = ["window", "highest sidelobe dB", "-6 dB width (bins)", "-3 dB width", "first null", "ENBW (bins)",
            "coherent gain", "first sidelobe (bins)"]  # fmt: skip
    return Section(
        "windows",
        f"Analysis windows, n = {n}",
        [
            "Properties of the periodic windows, and seed 003's tables: the periods each window's main lobe "
            "covers (down to -6 dB) when modulated to a period, and where its first sidelobes fall. "
            "A peak within a larger peak's sidelobe positions may be leakage; see docs/analysis.md."
        ],
        code=[wi.format_tables(rows, n)],
        tables=[(head, prow)],
        images=[(img.name, "window magnitude responses")],
        files=[f1],
    )


def selection_task(
    rec: Recording,
    out: Path,
    layer: int | None = None,
    band: tuple[float, float] = (8.7, 9.3),
    min_fraction: float = 0.05,
    window_name: str = "hann",
    pad_to: int | None = None,
    voice: str = "a",
    random_sets: int = 3,
    seed: int = 0,
) -> Section:
    """Units of ``layer`` (default the last) with at least ``min_fraction`` of their power in
    ``band``, as the snip command (JSON and OSC), with ``random_sets`` random sets of the same size."""
    need_steps(rec)
    layer = rec.num_layers - 1 if layer is None else layer
    check_layers(rec, [layer])
    out.mkdir(parents=True, exist_ok=True)
    h = rec.gate("h", layer)
    nfft = sp.band_nfft(rec.n_steps, pad_to)
    sel = select_by_band(h, layer, band, min_fraction, window_name, nfft)
    share = sp.band_power_fraction(h, band, window_name, nfft)
    rand = [random_units(rec.hidden_size, len(sel.units), layer, seed=seed + r) for r in range(random_sets)]
    f1 = write_json(
        out / f"selection_layer{layer}.json",
        {"selection": sel.to_json(voice), "random": [r.to_json(voice) for r in rand], "share_per_unit": share},
    )
    lines = [osc_line(sel, voice, band, min_fraction), *[osc_line(r, voice) for r in rand]]
    what = f"have {min_fraction * 100:g} % of their power"
    warn = few_units_warning(len(sel.units), rec.hidden_size, layer, band, what)
    (out / f"selection_layer{layer}.osc").write_text("\n".join(lines) + "\n", encoding="utf-8")
    img = plots_units.band_selection(
        share, min_fraction, out / f"selection_layer{layer}.png", f"Layer {layer}: share of power in periods "
        f"{band[0]}-{band[1]} steps"
    )
    pct = 100 * len(sel.units) / rec.hidden_size
    return Section(
        f"selection_layer{layer}",
        f"Units by band power (layer {layer})",
        [
            f"{len(sel.units)} of {rec.hidden_size} units ({pct:.1f} %) of layer {layer} (0-based) have at "
            f"least {min_fraction * 100:g} % of their power in periods {band[0]}-{band[1]} steps "
            f"({window_name} window, DFT of {nfft} points). Snip them with the JSON or the OSC line below; "
            "random sets of the same size are in the JSON and `.osc` files for comparison."
        ],
        code=[json.dumps(sel.snip_json()), lines[0]],
        images=[(img.name, "band-power share per unit, sorted")],
        files=[f1, f"selection_layer{layer}.osc"],
        warnings=[warn] if warn else [],
    )


def osc_line(sel: UnitSelection, voice: str, band: tuple[float, float] | None = None, min_fraction: float = 0) -> str:
    """The snip command as an OSC line, or a ``#`` comment when there is nothing to snip (the
    command needs at least one unit)."""
    if sel.units:
        return sel.osc(voice)
    why = f" has at least {min_fraction * 100:g} % of its power in periods {band[0]}-{band[1]} steps" if band else ""
    return f"# no unit of layer {sel.layer}{why}: nothing to snip"
