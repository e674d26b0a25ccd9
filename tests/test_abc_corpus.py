"""``folkrnn-live corpus build`` through the real CLI entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from folkrnn_live.abc.bars import check_bars
from folkrnn_live.abc.corpus import music21_corpus_dir, read_corpus
from folkrnn_live.cli.main import main
from folkrnn_live.tokens import V2

DATA = Path(__file__).parent / "data" / "abc"
N_TUNES = 14  # tunes in tests/data/abc/tunes.abc (all convert)
N_DROPS = 16  # tunes in tests/data/abc/drops.abc (none converts)


def expected_lines() -> list[str]:
    lines = (DATA / "tunes.expected").read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[1] for line in lines if line.strip() and not line.startswith("#")]


def row(out: str, name: str) -> list[str]:
    return next(line.split() for line in out.splitlines() if line.split()[:1] == [name])


def test_build_writes_one_tune_per_line_with_blank_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "corpus.txt"
    assert main(["corpus", "build", str(DATA / "tunes.abc"), "--out", str(out_file)]) == 0
    text = out_file.read_text(encoding="utf-8")
    assert text == "".join(line + "\n\n" for line in expected_lines())
    out = capsys.readouterr().out
    # columns: read, kept, dropped, folded
    assert row(out, str(DATA / "tunes.abc"))[1:] == [str(N_TUNES), str(N_TUNES), "0", "0"]
    assert f"wrote {N_TUNES} tunes" in out and "elapsed" in out


def test_report_counts_drops_by_reason_per_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "corpus.txt"
    args = ["corpus", "build", str(DATA / "tunes.abc"), str(DATA / "drops.abc"), "--out", str(out_file)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert row(out, str(DATA / "drops.abc"))[1:] == [str(N_DROPS), "0", str(N_DROPS), "0"]
    assert row(out, "total")[1:] == [str(N_TUNES + N_DROPS), str(N_TUNES), str(N_DROPS), "0"]
    # Reason rows: one drop per reason in drops.abc, none in tunes.abc, the total last.
    for reason in ("meter change", "pitch out of range", "wrong bar lengths", "key unsupported", "broken rhythm >>"):
        line = next(line for line in out.splitlines() if line.startswith(reason))
        assert line[len(reason) :].split() == ["0", "1", "1"]


def test_duplicates_are_kept_once_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "corpus.txt"
    src = str(DATA / "tunes.abc")
    assert main(["corpus", "build", src, src, "--out", str(out_file)]) == 0
    assert len(read_corpus(out_file)) == N_TUNES
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("duplicate"))
    assert line.split()[1:] == ["0", str(N_TUNES), str(N_TUNES)]


def test_folder_source_is_searched_recursively_in_sorted_order(tmp_path: Path) -> None:
    folder = tmp_path / "abc"
    (folder / "b").mkdir(parents=True)
    shutil.copy(DATA / "latin1.abc", folder / "b" / "z.abc")
    shutil.copy(DATA / "tunes.abc", folder / "a.abc")
    (folder / "notes.txt").write_text("not ABC, not searched")
    out_file = tmp_path / "corpus.txt"
    assert main(["corpus", "build", str(folder), "--out", str(out_file)]) == 0
    tunes = [" ".join(t) for t in read_corpus(out_file)]
    assert tunes[:N_TUNES] == expected_lines()
    assert tunes[N_TUNES:] == ["M:4/4 K:Cmaj C D E F G 2 E 2 | F 2 D 2 C 4 |"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("no/such/file.abc", "is not a file, a folder or a music21 collection"),
        ("oneills", "is not a file, a folder or a music21 collection"),
        ("essenfolksong", "did you mean essenFolksong?"),
    ],
)
def test_bad_source_names_it_and_what_is_allowed(
    source: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_file = tmp_path / "corpus.txt"
    assert main(["corpus", "build", source, "--out", str(out_file)]) == 2
    err = capsys.readouterr().err
    assert source in err and message in err
    assert "allowed:" in err and "oneills1850" in err and "music21" in err
    assert not out_file.exists()


def test_output_in_a_missing_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["corpus", "build", str(DATA / "tunes.abc"), "--out", str(tmp_path / "no" / "c.txt")]) == 2
    err = capsys.readouterr().err
    assert f"folder {tmp_path / 'no'} does not exist" in err and "Traceback" not in err


def test_non_abc_files_are_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "readme.abc"
    text.write_text("just some words\nno tunes here\n")
    binary = tmp_path / "blob.abc"
    binary.write_bytes(b"X:1\x00\x01\x02")
    empty = tmp_path / "empty"
    empty.mkdir()
    for path, message in ((text, "no ABC tunes"), (binary, "not a text file"), (empty, "no *.abc files")):
        assert main(["corpus", "build", str(path), "--out", str(tmp_path / "c.txt")]) == 2
        assert message in capsys.readouterr().err


def test_a_broken_tune_in_a_file_is_dropped_not_fatal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "mixed.abc"
    src.write_text("X:1\nM:2/4\nL:1/8\nK:C\nC2 D2|E4|]\n\nX:2\nM:2/4\nL:1/8\nK:C\nC2 [D2|E4|]\n")
    assert main(["corpus", "build", str(src), "--out", str(tmp_path / "c.txt")]) == 0
    assert row(capsys.readouterr().out, str(src))[1:] == ["2", "1", "1", "0"]


def test_music21_collection_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # miscFolk is the smallest of the five collections; its tunes are counted here from the X: lines.
    files = sorted((music21_corpus_dir() / "miscFolk").rglob("*.abc"))
    n_tunes = sum(line.startswith("X:") for f in files for line in f.read_text(encoding="latin-1").splitlines())
    out_file = tmp_path / "corpus.txt"
    assert main(["corpus", "build", "miscFolk", "--out", str(out_file)]) == 0
    read, kept, dropped = (int(x) for x in row(capsys.readouterr().out, "miscFolk")[1:4])
    tunes = read_corpus(out_file)
    assert read == n_tunes and kept == len(tunes) and read == kept + dropped
    assert kept > 0.7 * read
    for tune in tunes:
        assert all(t in V2 for t in tune)
        assert check_bars(tune).all_ok
