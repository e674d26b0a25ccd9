"""Most voices kept in time at 240 BPM, per step precision (and on a GPU).

    python3 benchmarks/bench_voices.py --precisions fp32 int8 --counts 8 12 16 20 24 28 32
    python3 benchmarks/bench_voices.py --device cuda --counts 16 32 48 64      # on a GPU

The server runs in this process as ``folkrnn-live serve`` builds it (``bench_server.py``'s voices
part, the same criterion: a count is in time when the p99 timing error of its note events is at
most 1 ms and no note waited for its token), with ``model.precision`` set for every voice, and
``model.batch_voices`` on (one forward pass for all voices that will want a token, the server's
default) and off (each voice steps its own batch-1 state), side by side in the same run.
Target (issue 17): at least 24 voices in time with int8 on the 2-core CPU, 64 on a GPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_server


class _Config:
    """bench_server's config module with one more override."""

    def __init__(self, extra: dict[str, Any]) -> None:
        self.extra = extra

    def load(self, path: Any, overrides: dict[str, Any]) -> Any:
        from folkrnn_live.server.runtime import config

        return config.load(path, {**overrides, **self.extra})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--precisions", nargs="+", choices=("fp32", "int8"), default=["fp32", "int8"])
    ap.add_argument("--counts", nargs="+", type=int, default=[8, 12, 16, 20, 24, 28, 32])
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per count")
    ap.add_argument("--batch", nargs="+", choices=("on", "off"), default=["on", "off"],
                    help="model.batch_voices settings to measure (default: both)")
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--lookahead", type=float, default=0.05, help="server.lookahead in seconds (default 0.05)")
    ap.add_argument("--rt", action="store_true", help="the server's loop under SCHED_RR 10 (root), as on stage")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    if args.rt:
        bench_server.RT_PRIORITY = 10
    model, which = bench_server.load_model()
    if args.device == "cuda":
        model = model.cuda()
    out: dict[str, Any] = {"model": which, "device": args.device, "realtime_priority": bench_server.RT_PRIORITY,
                           "lookahead": args.lookahead}
    for precision in ["fp32"] if args.device == "cuda" else args.precisions:
        for batch in args.batch:
            extra = {"model.precision": precision, "model.batch_voices": batch == "on",
                     "server.lookahead": args.lookahead}
            bench_server.config = _Config(extra)  # type: ignore[assignment]
            load = os.getloadavg()[0]
            print(f"{precision}, voices batched {batch}, lookahead {args.lookahead:g} s, on {args.device} "
                  f"({args.seconds:.0f} s per count, "
                  f"load {load:.2f}):", flush=True)
            res = asyncio.run(bench_server.part_voices(model, args.seconds, args.counts))
            out[f"{precision}/batch-{batch}"] = res
            print(f"  most voices in time: {res['most_voices_in_time']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
