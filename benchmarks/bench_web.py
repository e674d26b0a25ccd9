"""Live page benchmarks (issue 14): notation latency, the page server's CPU, note timing with the page open.

    python3 benchmarks/bench_web.py                          # both parts (about 5 minutes)
    python3 benchmarks/bench_web.py --parts timing --seconds 60 --rounds 3
    python3 benchmarks/bench_web.py --parts cpu --cpu-seconds 20 --json out/bench_web.json
    python3 benchmarks/bench_web.py --parts timing --rt       # the server's loop under SCHED_RR 10

The server runs in this process exactly as ``folkrnn-live serve`` builds it (shipped model, page on
a free port); the pages run in Debian's headless Chromium, driven by Playwright from a separate
process so that neither the browser nor its driver is counted as the server's CPU.

* timing: 4 voices at 240 BPM; windows with no page open and with a page open, alternated
  (``--rounds`` of ``--seconds / --rounds`` each, so a drift of the shared machine hits both alike).
  Note timing error: as in bench_server.py (a MemoryOutput stamps each message; error = stamp minus
  scheduled time, over note-ons and note-offs).  Latency: the page's own clock when a redraw holding
  a token finished, minus the server's clock when the token was generated (the same machine's
  wall clock).  Dropped tokens: gaps in the voices' step counters as the page saw them, tokens the
  page had not received when the server had generated them, and note tokens not drawn as notes.
  The page's own cost, what competes with the server for the cores: milliseconds spent in its
  redraws (``stats.renderMs``) per second of the window, and the CPU time of the browser's whole
  process tree (Chromium's processes and the idle Playwright driver, from /proc) per second.
* cpu: the server process's CPU time (all threads) per second of wall time, with the page server
  off (``web.enabled = false``), on with no page, with 1 page and with 8 pages open.

``--rt`` runs the server's event loop under SCHED_RR (``server.realtime_priority = 10``, as a
performance would with root or CAP_SYS_NICE) and reports the scheduling the loop really got; the
browser's process puts itself back to normal scheduling first, or Chromium would inherit SCHED_RR.

The load average is printed with each part: this 2-core machine is shared (a model may be training).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy: batch-1 steps on the calling thread

import argparse
import asyncio
import json
import multiprocessing as mp
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The same port picker and timing summary as the server benchmark (benchmarks/ is on sys.path when a
# benchmark runs as a script).
from bench_server import free_port  # noqa: E402
from bench_server import stats_ms as ms  # noqa: E402

from folkrnn_live.player.outputs import MemoryOutput  # noqa: E402
from folkrnn_live.server.runtime import config  # noqa: E402
from folkrnn_live.server.runtime.service import Server  # noqa: E402
from folkrnn_live.server.transports.web.transport import WebTransport  # noqa: E402

TEMPO = 240.0
VOICES = 4
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Whether the page has received every token up to the server's step counters (voice -> counter).
HAS_TOKENS = "t => Object.entries(t).every(([v, n]) => window.folkrnn.page.voices.get(v).lastTotal >= n)"
RESET_STATS = "() => { const s = window.folkrnn.stats; s.latencies = []; s.renders = 0; s.renderMs = 0; }"
RENDER_STATS = "() => ({renders: window.folkrnn.stats.renders, renderMs: window.folkrnn.stats.renderMs})"


def scheduling() -> str:
    """The calling thread's scheduling policy and priority, e.g. ``SCHED_RR 10``."""
    policy = os.sched_getscheduler(0)
    names = {os.SCHED_OTHER: "SCHED_OTHER", os.SCHED_RR: "SCHED_RR", os.SCHED_FIFO: "SCHED_FIFO"}
    return f"{names.get(policy, policy)} {os.sched_getparam(0).sched_priority}"


# --- the browser, in a process of its own ------------------------------------------------------------
def wait_js(page: Any, expression: str, arg: Any = None, timeout: float = 30.0) -> Any:
    """Poll a JavaScript function until truthy (Playwright's own waiting polls by evaluating a
    string in the page, which the page's Content-Security-Policy refuses)."""
    end = time.monotonic() + timeout
    while not (v := page.evaluate(expression, arg)):
        if time.monotonic() > end:
            raise TimeoutError(f"{expression} was still false after {timeout:g} s")
        time.sleep(0.05)
    return v


def tree_cpu_seconds(root: int) -> float:
    """CPU time (user + system) of process ``root`` and all its descendants, from /proc (Linux)."""
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        parent[int(entry.name)] = int(fields[1])  # fields after the name: state, ppid, ...
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, ppid in parent.items() if ppid == pid]
    return total


def browser_main(url: str, pages: int, ready: Any, totals_in: Any, results: Any, report: bool) -> None:
    """Open ``pages`` pages at ``url``; when the server's step counters arrive on ``totals_in``,
    wait until every page has those tokens and report what each page saw."""
    from playwright.sync_api import sync_playwright

    # A process started from a SCHED_RR thread inherits SCHED_RR, and so would Chromium: the page
    # must compete with the server as an ordinary process does, not preempt it.
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    with sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        errors: list[str] = []
        tabs = []
        for _ in range(pages):
            pg = b.new_page(viewport={"width": 1400, "height": 1000})
            pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            pg.goto(url)
            wait_js(pg, "() => window.folkrnn && window.folkrnn.stats.hellos >= 1", timeout=120)
            tabs.append(pg)
        for pg in tabs:
            pg.evaluate(RESET_STATS)
        ready.set()
        t0, cpu0 = time.monotonic(), tree_cpu_seconds(os.getpid())
        totals = totals_in.recv()  # the server's step counters when the window ended
        window, browser_cpu = time.monotonic() - t0, tree_cpu_seconds(os.getpid()) - cpu0
        drawing = [pg.evaluate(RENDER_STATS) for pg in tabs]  # the window's redraws only
        out = []
        for pg, drew in zip(tabs if report else (), drawing, strict=False):
            try:
                wait_js(pg, HAS_TOKENS, totals)
            except Exception as exc:
                seen = pg.evaluate("[...window.folkrnn.page.voices].map(([k, v]) => [k, v.lastTotal])")
                raise RuntimeError(f"the page did not get every token: server {totals}, page {seen}") from exc
            check = pg.evaluate("window.folkrnn.check()")
            stats = pg.evaluate("({gaps: window.folkrnn.stats.gaps, stepMismatch: window.folkrnn.stats.stepMismatch,"
                                " renders: window.folkrnn.stats.renders, renderMs: window.folkrnn.stats.renderMs,"
                                " latencies: window.folkrnn.stats.latencies})")
            out.append({"check": check, **stats, "window_renders": drew["renders"],
                        "window_render_ms": drew["renderMs"], "window_s": window})
        results.put({"pages": out, "console_errors": errors, "browser_scheduling": scheduling(),
                     "browser_cpu_s": browser_cpu, "window_s": window})
        b.close()


class Browser:
    """``async with Browser(url, pages):`` pages open (and drawing) inside the block."""

    def __init__(self, url: str, pages: int, srv: Server, report: bool = True) -> None:
        self.url, self.pages, self.srv = url, pages, srv
        ctx = mp.get_context("spawn")
        self.ready, self.results = ctx.Event(), ctx.Queue()
        self.totals_in, self.totals_out = ctx.Pipe(duplex=False)
        self.proc = ctx.Process(target=browser_main, args=(url, pages, self.ready, self.totals_in, self.results,
                                                                 report))
        self.report: dict[str, Any] = {}

    async def __aenter__(self) -> Browser:
        self.proc.start()
        if not await asyncio.to_thread(self.ready.wait, 300):  # 8 pages on a loaded 2-core machine: minutes
            raise RuntimeError("the browser did not open its pages within 300 s")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        totals = {name: lv.voice.total_steps - 1 for name, lv in self.srv.voices.items()}
        self.totals_out.send(totals)
        self.report = await asyncio.to_thread(self.results.get, True, 300)
        await asyncio.to_thread(self.proc.join, 30)


# --- the server ------------------------------------------------------------------------------------
async def start(model: Any, web: bool = True, rt: int = 0
                ) -> tuple[Server, asyncio.Task[None], list[MemoryOutput], str]:
    overrides = {"osc.port": free_port(), "server.voices": VOICES, "midi.output": "none", "recording.dir": "",
                 "voice_defaults.tempo": TEMPO, "server.log_level": "warning", "web.port": 0,
                 "web.enabled": web, "server.realtime_priority": rt}
    srv = Server(config.load(None, overrides), model=model)
    task = asyncio.create_task(srv.serve(install_signals=False))
    await srv.started.wait()
    outs = []
    for lv in srv.voices.values():
        out = MemoryOutput(f"bench-{lv.name}")
        out.open()
        lv.player.outputs.append(out)
        outs.append(out)
    t = next((x for x in srv.transports if isinstance(x, WebTransport)), None)
    return srv, task, outs, "" if t is None else t.url


async def stop(srv: Server, task: asyncio.Task[None]) -> None:
    srv.request_exit()
    await task


def timing_errors(outs: list[MemoryOutput], t0: float, t1: float) -> list[float]:
    return [s.at - s.when for o in outs for s in o.sent if t0 <= s.when < t1 and s.msg.type in ("note_on", "note_off")]


def underruns(srv: Server) -> int:
    return sum(lv.player.stats.underruns for lv in srv.voices.values())


# --- part 1: timing, latency, dropped tokens ----------------------------------------------------------
async def part_timing(model: Any, seconds: float, rounds: int, rt: int = 0) -> dict[str, Any]:
    srv, task, outs, url = await start(model, rt=rt)
    loop_scheduling = scheduling()  # the server's loop runs on this thread
    loop = asyncio.get_running_loop()
    window = seconds / rounds
    closed: list[float] = []
    opened: list[float] = []
    under = {"closed": 0, "open": 0}
    latencies: list[float] = []
    drops = {"gaps": 0, "stepMismatch": 0, "undrawn_notes": 0, "console_errors": 0}
    drawing = {"renders": 0, "render_ms": 0.0, "seconds": 0.0, "browser_cpu_s": 0.0, "browser_s": 0.0}
    browser_scheduling = ""
    await asyncio.sleep(2.0)
    for _ in range(rounds):
        u0, t0 = underruns(srv), loop.time()
        await asyncio.sleep(window)
        closed += timing_errors(outs, t0, loop.time())
        under["closed"] += underruns(srv) - u0
        async with Browser(url, 1, srv) as b:
            u0, t0 = underruns(srv), loop.time()
            await asyncio.sleep(window)
            opened += timing_errors(outs, t0, loop.time())
            under["open"] += underruns(srv) - u0
        for pg in b.report["pages"]:
            latencies += pg["latencies"]
            drops["gaps"] += pg["gaps"]
            drops["stepMismatch"] += pg["stepMismatch"]
            drops["undrawn_notes"] += sum(abs(c["noteTokens"] - c["drawnNotes"]) for c in pg["check"].values())
            drawing["renders"] += pg["window_renders"]
            drawing["render_ms"] += pg["window_render_ms"]
            drawing["seconds"] += pg["window_s"]
        drops["console_errors"] += len(b.report["console_errors"])
        drawing["browser_cpu_s"] += b.report["browser_cpu_s"]
        drawing["browser_s"] += b.report["window_s"]
        browser_scheduling = b.report["browser_scheduling"]
    await stop(srv, task)
    c, o = ms(closed), ms(opened)
    secs = drawing["seconds"] or 1.0
    return {"voices": VOICES, "tempo": TEMPO, "seconds_each": seconds, "rounds": rounds,
            "loop_scheduling": loop_scheduling, "browser_scheduling": browser_scheduling,
            "timing_closed": c, "timing_open": o, "underruns": under,
            "p99_open_vs_closed": round(o["p99_ms"] / c["p99_ms"], 3) if c.get("p99_ms") else None,
            "token_to_notation": ms(latencies), "dropped": drops,
            "page_drawing": {"render_ms_per_s": round(drawing["render_ms"] / secs, 2),
                             "renders_per_s": round(drawing["renders"] / secs, 2),
                             "ms_per_render": round(drawing["render_ms"] / max(1, drawing["renders"]), 3),
                             "browser_cpu_cores": round(drawing["browser_cpu_s"] / (drawing["browser_s"] or 1.0), 3)}}


# --- part 2: the page server's CPU ---------------------------------------------------------------------
async def cpu_window(seconds: float) -> float:
    c0, t0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    return (time.process_time() - c0) / (time.monotonic() - t0)


async def part_cpu(model: Any, seconds: float, rt: int = 0) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    srv, task, _, _ = await start(model, web=False, rt=rt)
    await asyncio.sleep(2.0)
    rows["web off"] = await cpu_window(seconds)
    await stop(srv, task)
    srv, task, _, url = await start(model, rt=rt)
    await asyncio.sleep(2.0)
    rows["web on, no page"] = await cpu_window(seconds)
    for n in (1, 8):
        async with Browser(url, n, srv, report=False):
            rows[f"{n} page(s)"] = await cpu_window(seconds)
    web = next(t for t in srv.transports if isinstance(t, WebTransport))
    await stop(srv, task)
    base = rows["web on, no page"]
    return {"server_cpu_cores": {k: round(v, 4) for k, v in rows.items()},
            "added_by_pages_cores": {k: round(v - base, 4) for k, v in rows.items() if "page(s)" in k},
            "frames_sent": web.stats.sent_frames, "messages_sent": web.stats.sent_messages,
            "seconds_each": seconds}


def load_model() -> Any:
    from folkrnn_live.model import checkpoint

    return checkpoint.load_default_or(None).model


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    model = load_model()
    out: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
                           "loadavg_start": os.getloadavg()}
    if "timing" in args.parts:
        print(f"timing ({args.seconds:.0f} s closed + {args.seconds:.0f} s open in {args.rounds} rounds, "
              f"load {os.getloadavg()[0]:.2f})...", flush=True)
        out["timing"] = await part_timing(model, args.seconds, args.rounds, args.rt)
        print(json.dumps(out["timing"]), flush=True)
    if "cpu" in args.parts:
        print(f"cpu ({args.cpu_seconds:.0f} s each, load {os.getloadavg()[0]:.2f})...", flush=True)
        out["cpu"] = await part_cpu(model, args.cpu_seconds, args.rt)
        print(json.dumps(out["cpu"]), flush=True)
    out["loadavg_end"] = os.getloadavg()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--parts", default="timing,cpu", help="comma-separated: timing, cpu")
    p.add_argument("--seconds", type=float, default=60.0, help="timing: seconds closed and seconds open, each")
    p.add_argument("--rounds", type=int, default=3, help="timing: closed/open alternations")
    p.add_argument("--cpu-seconds", type=float, default=20.0, help="cpu: seconds per setting")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--rt", type=int, nargs="?", const=10, default=0, metavar="PRIORITY",
                   help="run the server's loop under SCHED_RR (root or CAP_SYS_NICE): server.realtime_priority")
    args = p.parse_args()
    args.parts = set(args.parts.split(","))
    out = asyncio.run(main_async(args))
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
