"""Corpus build benchmark: convert all five music21 folk collections and report time and counts.

    python3 benchmarks/bench_corpus.py [--repeat N] [--out FILE]

Prints the per-source report of ``folkrnn-live corpus build music21``, then wall and CPU time per run
(CPU time is the figure to compare on a busy machine), tunes per second, and the corpus size.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from folkrnn_live.abc.corpus import build_corpus, format_report, write_corpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs to time (the report is of the last)")
    parser.add_argument("--out", help="also write the corpus here")
    args = parser.parse_args()
    walls, cpus = [], []
    result = None
    for _ in range(max(1, args.repeat)):
        w0, c0 = time.perf_counter(), time.process_time()
        result = build_corpus(["music21"])
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    assert result is not None
    out = args.out or os.path.join(tempfile.mkdtemp(), "corpus.txt")
    write_corpus(result.tunes, out)
    total = result.total
    tokens = sum(len(t) for t in result.tunes)
    print(format_report(result))
    print()
    machine = platform.processor() or platform.machine()
    print(f"machine: {machine}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    wall_s = ", ".join(f"{w:.2f}" for w in walls)
    cpu_s = ", ".join(f"{c:.2f}" for c in cpus)
    print(f"runs: {len(walls)}; wall s: {wall_s}; cpu s: {cpu_s}")
    best = min(cpus)
    print(f"tunes read {total.read}, kept {total.kept}; {total.read / best:.0f} tunes/s (best CPU time)")
    print(f"corpus: {len(result.tunes)} tunes, {tokens} tokens, {Path(out).stat().st_size} bytes -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
