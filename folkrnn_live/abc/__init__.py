"""ABC 2.1 ↔ folk-rnn v2 tokens: reading collections, converting, checking bars, writing ABC.

Modules: :mod:`~folkrnn_live.abc.parse` (tunes, header fields, body lexer),
:mod:`~folkrnn_live.abc.convert` (ABC → v2 tokens), :mod:`~folkrnn_live.abc.bars` (bar checker),
:mod:`~folkrnn_live.abc.corpus` (sources, corpus build, report), :mod:`~folkrnn_live.abc.writer`
(v2 tokens → ABC).
"""

from folkrnn_live.abc.bars import BarCheck, BarReport, bar_accuracy, check_bars
from folkrnn_live.abc.convert import Converted, ConvertOptions, convert_abc, convert_tune, convert_tunes
from folkrnn_live.abc.corpus import CorpusResult, build_corpus, format_report, read_corpus, write_corpus
from folkrnn_live.abc.parse import DROP_REASONS, AbcTune, DropReason, TuneError, read_abc_file, split_tunes
from folkrnn_live.abc.writer import tokens_to_abc, tunes_to_abc

__all__ = [
    "DROP_REASONS",
    "AbcTune",
    "BarCheck",
    "BarReport",
    "ConvertOptions",
    "Converted",
    "CorpusResult",
    "DropReason",
    "TuneError",
    "bar_accuracy",
    "build_corpus",
    "check_bars",
    "convert_abc",
    "convert_tune",
    "convert_tunes",
    "format_report",
    "read_abc_file",
    "read_corpus",
    "split_tunes",
    "tokens_to_abc",
    "tunes_to_abc",
    "write_corpus",
]
