"""``folkrnn-live record`` and ``folkrnn-live analyze`` end to end on a tiny model."""

from __future__ import annotations

import csv
import html
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from _models import tiny_model

from folkrnn_live.cli.main import main
from folkrnn_live.model import checkpoint
from folkrnn_live.recording.recording import load_recording
from folkrnn_live.sampler.voice import Voice
from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.registry import CommandContext

Capture = pytest.CaptureFixture[str]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tiny_model(hidden=8, layers=2, seed=2)
    return checkpoint.save(model, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def recording(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("rec") / "rec"
    args = ["record", "--model", str(model_dir), "--out", str(out), "--seed", "7", "--prime", "M:4/4 K:Cmaj",
            "--max-tokens", "20", "--n-tunes", "2", "--chunk-steps", "8"]
    assert main(args) == 0
    return out


def test_record_writes_the_tunes_it_prints(recording: Path, model_dir: Path, capsys: Capture) -> None:
    r = load_recording(recording)
    assert r.voice == "a" and r.tune_ids == [0, 1]
    model = checkpoint.load(model_dir).model
    for k, seed in enumerate((7, 8)):
        expected = Voice(model, seed=seed, prime=["M:4/4", "K:Cmaj"], max_tokens=20).generate()
        assert r.tune_view(k).tokens == expected
    assert r.meta["meta"]["command"].startswith("folkrnn-live record")
    assert r.meta["meta"]["model_dir"] == str(model_dir.resolve())


def test_record_with_stimulation_and_snip(model_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec"
    snip = json.dumps({"layer": 1, "mode": "out", "units": [0, 5]})
    assert main(["record", "--model", str(model_dir), "--out", str(out), "--seed", "1", "--max-tokens", "10",
                 "--stimulate", "0.3", "--snip", snip]) == 0
    r = load_recording(out)
    assert (r.input_token == -1).all() and r.controls[0]["force"]["weight_generated"] == pytest.approx(0.7)
    assert r.controls[0]["snip"] == {"1": {"mode": "out", "units": [0, 5]}}
    assert not r.gates["h"][:, 1, [0, 5]].any()


#: What each analysis writes (a few files each, with --layer 1 and a 2-layer model).
FILES = {
    "posterior": ["posterior.png", "posterior_steps.csv", "posterior_bar_mass.csv", "posterior.npz"],
    "heatmaps": ["heatmap_h_layer1.png"],
    "distributions": ["histogram_h.png", "max_magnitude_h.png", "distribution_h.json", "max_magnitude_h.csv"],
    "spectra": ["spectra_hann_layer0.png", "spectra_hann_layer1.csv", "spectra_hann_peaks.csv",
                "mean_spectra_hann.png", "mean_spectra_hann.csv"],
    "windows": ["windows.json", "windows.png"],
    "select": ["selection_layer1.json", "selection_layer1.osc", "selection_layer1.png"],
    "gramians": ["gramian_onehot.png", "gramian_softmax_l1.png", "gramians_layer1.png", "gates_layer1.png",
                 "gramians.npz", "gramians.json", "gramian_onehot.csv", "softmax_l1.csv", "gramian_similarity.png",
                 "gramian_similarity.csv"],
    "params": ["params.json", "output_singular_values.csv", "output_loadings.csv", "input_column_norms.csv",
               "input_gramians.npz", "output_loadings.png", "input_gramians.png", "output_bias_correlation.png"],
    "ablation": ["ablation_layer1.json", "ablation_layer1.csv", "ablation_layer1.png"],
    "traces": ["bar_correlations.csv", "bar_correlations.json", "unit_traces.png"],
    "softmax": ["delta_softmax.png", "delta_softmax.json"],
    "projections": ["projections.png", "projections.csv"],
}  # fmt: skip


def test_every_analysis_writes_its_numbers_and_figures(recording: Path, tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "out"
    assert main(["analyze", str(recording), *FILES, "--tune", "1", "--layer", "1", "--out", str(out), "--pad", "256",
                 "--osc-voice", "b", "--min-fraction", "0", "--seeds", "1..2", "--fractions", "0,0.25",
                 "--max-tokens", "12"]) == 0  # fmt: skip
    for name, files in FILES.items():
        for f in files:
            assert (out / f).is_file() and (out / f).stat().st_size > 100, (name, f)
    printed = capsys.readouterr().out.splitlines()
    rec = load_recording(recording, tune=1)
    n = rec.n_steps

    # select: the JSON and the OSC line are the server's snip command, accepted as they are.
    snip = json.loads(next(p for p in printed if p.startswith("{")))
    line = next(p for p in printed if p.startswith("/folkrnn/"))
    assert snip["layer"] == 1 and snip["mode"] == "out" and len(snip["units"]) > 0  # min-fraction 0: every unit
    address, *values = shlex.split(line)
    ctx = CommandContext.for_model(rec.vocab, 2, 8, voices=("b",))
    cmd, target = COMMANDS.parse_address(address, ctx)
    call = COMMANDS.bind(cmd, values, ctx, target)
    assert (cmd.name, target, call.args["layer"], list(call.args["units"])) == ("snip", "b", 1, snip["units"])
    assert COMMANDS.bind_named("snip", snip, ctx, "b").args == call.args
    sel = json.loads((out / "selection_layer1.json").read_text())
    assert [len(r["snip"]["units"]) for r in sel["random"]] == [len(snip["units"])] * 3

    # posterior and Gramians against the recording itself.
    with open(out / "posterior_steps.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["token"] for r in rows] == rec.tokens
    assert float(rows[3]["p_token"]) == pytest.approx(float(rec.probs[3, rec.token[3]]), abs=1e-5)
    g = np.load(out / "gramians.npz")
    x = rec.x.astype(float)
    np.testing.assert_array_equal(g["onehot"], x @ x.T)
    p = rec.probs.astype(float)
    np.testing.assert_allclose(g["softmax_l1"], np.abs(p[:, None, :] - p[None, :, :]).sum(axis=2), atol=1e-9)
    assert json.loads((out / "gramians.json").read_text())["softmax_l1"]["pairs"] == n * (n - 1) // 2
    with open(out / "spectra_hann_layer1.csv", newline="") as fh:
        spec = list(csv.reader(fh))
    assert len(spec) == 1 + 8 and len(spec[0]) == 1 + 256 // 2 + 1  # units x bins of the padded DFT
    # windows on a recording: the tune's length; ablation: the table is printed.
    assert json.loads((out / "windows.json").read_text())["n"] == n
    assert any(p.startswith("fraction\tunits") for p in printed)
    with open(out / "ablation_layer1.csv", newline="") as fh:
        abl = [(r["fraction"], r["kind"], r["units"]) for r in csv.DictReader(fh)]
    assert abl == [("0.0", "none", "0"), ("0.25", "band", "2"), ("0.25", "random", "2")]


def test_windows_without_a_recording_prints_seed_003s_tables(tmp_path: Path, capsys: Capture) -> None:
    assert main(["analyze", "windows", "--length", "147", "--out", str(tmp_path / "w")]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"\| 8\.8 \| \[8\.49, 9\.13\] \| \[8\.3, 9\.36\] \|", printed)
    w = json.loads((tmp_path / "w" / "windows.json").read_text())
    assert w["n"] == 147 and w["properties"]["hann"]["enbw_bins"] == pytest.approx(1.5)


def test_report_has_an_index_with_the_tune_figures_and_commands(recording: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    # params and gramians are left out to keep the test short (the test above runs them); the
    # ablation is in, so the report reaches the model the recording names.
    assert main(["analyze", str(recording), "--report", str(out), "--tune", "1", "--seeds", "3",
                 "--fractions", "0.5", "--max-tokens", "10", "--skip", "params,gramians"]) == 0  # fmt: skip
    page = (out / "index.html").read_text()
    rec = load_recording(recording).tune_view(1)
    assert html.escape(" ".join(rec.tokens)) in page
    assert "folkrnn-live record" in page and "--report" in page  # how it was recorded and analysed
    images = re.findall(r"<img src='([^']+)'", page)
    assert all((out / i).is_file() for i in images)
    for f in ("posterior.png", "heatmap_h_layer0.png", "histogram_h.png", "mean_spectra_hann.png",
              "mean_spectra_rect.png", "mean_spectra_hann_keepmean.png", "windows.png", "selection_layer1.png",
              "unit_traces.png", "delta_softmax.png", "projections.png", "ablation_layer1.png"):  # fmt: skip
        assert f in images, f
    # The ablation generated its tunes with the recording's prime (its meter and mode), and the page
    # says which band of periods it used and why.
    assert json.loads((out / "ablation_layer1.json").read_text())["settings"]["prime"] == ["M:4/4", "K:Cmaj"]
    assert "measured bar period" in page or "fewer than two bar tokens" in page
    assert page.count("Left out (--skip).") == 2 and not (out / "params.json").exists()
    md = (out / "index.md").read_text()
    assert md.count("![") == len(images) and "## Ablation: snipping layer 1 units" in md


def test_a_model_that_did_not_make_the_recording_is_refused(recording: Path, tmp_path: Path, capsys: Capture) -> None:
    other = checkpoint.save(tiny_model(hidden=8, layers=2, seed=3), tmp_path / "other")
    assert main(["analyze", str(recording), "params", "--model", str(other), "--out", str(tmp_path / "p")]) == 2
    assert "not the model this recording was made with" in capsys.readouterr().err


def test_bad_input_exits_2_with_one_line_naming_the_field(recording: Path, tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "empty").mkdir()
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in recording.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "chunk_000001.npz").write_bytes(b"PK\x03\x04 not really")
    out = ["--out", str(tmp_path / "o")]
    cases = [
        (["analyze", str(tmp_path / "none"), "posterior", *out], "not a directory"),
        (["analyze", str(tmp_path / "empty"), "posterior", *out], "meta.json: missing"),
        (["analyze", str(broken), "posterior", *out], "chunk_000001.npz: not a readable chunk"),
        (["analyze", str(recording), "fourier", *out],
         "analysis must be one of posterior, heatmaps, distributions, spectra, windows, select, gramians, params, "
         "ablation, traces, softmax, projections; got fourier"),
        (["analyze", str(recording), "spectra", "--window", "ham", *out],
         "--window must be one of hann, rect; got 'ham'"),
        (["analyze", str(recording), "select", "--band", "9", *out], "--band must be auto or two periods LOW,HIGH"),
        (["analyze", str(recording), "select", "--band", "9.3,8.7", *out], "with 2 <= LOW < HIGH; got '9.3,8.7'"),
        (["analyze", str(recording), "heatmaps", "--gate", "x", *out], "--gate must be one of i, f, o, g_pre, g, c, h"),
        (["analyze", str(recording), "select", "--layer", "2", *out], "--layer must be in range 0..1"),
        (["analyze", str(recording), "posterior", "--tune", "5", *out], "tune must be in range 0..1"),
        (["analyze", str(recording), "--report", str(tmp_path / "r"), "--skip", "fft"], "--skip must name analyses"),
        (["analyze", str(recording), "posterior"], "--out DIR is required"),
        (["analyze", "gramians", *out], "gramians need a recording"),
        (["analyze", "ablation", "--mode", "cut", *out], "--mode must be one of out, all; got 'cut'"),
        (["analyze", "windows", "--periods", "1.5", *out], "--periods must be at least 2 steps"),
        (["analyze", str(recording), "traces", "--units", "0-3", *out], "--units must be LAYER:UNIT pairs"),
        (["analyze", str(recording), "traces", "--units", "5:1", *out], "--units: layer must be in range 0..1"),
        (["analyze", "--reproduce", "part3", *out], "--reproduce must be one of part1, part7, part8, part9 or all"),
        (["analyze", "--reproduce", "part7"], "--reproduce takes no recording or analyses, and needs --out DIR"),
        (["record", "--out", str(recording), "--model", str(recording)], "model.json"),
    ]  # fmt: skip
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err and "\n" not in err, (argv, err)
