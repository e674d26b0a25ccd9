"""The live page in a real headless Chromium (Debian's ``chromium``, driven by Playwright; no browser
is downloaded): it loads without a console error, its notation gains notes as tokens arrive, its
temperature slider drives the server, a bad value shows the server's own error, and with four voices
at 240 BPM it keeps up without dropping a token (the notes' timing with the page open is measured
in benchmarks/bench_web.py).

The server runs in this process with the shipped model (its tunes are well formed, so every note
token is one drawn note).  Screenshots go to ``test-artifacts/web/`` (ignored by git).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from live_server import serving, until

from folkrnn_live.player.outputs import MemoryOutput
from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.commands.registry import CommandError
from folkrnn_live.server.runtime import config
from folkrnn_live.server.runtime.service import Server
from folkrnn_live.server.transports.web.transport import WebTransport

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason="needs Debian's chromium (scripts/test installs it)")


@pytest.fixture(scope="module")
def model() -> Any:
    from folkrnn_live.model import checkpoint

    return checkpoint.load_default_or(None).model


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        # Chromium's sandbox needs an unprivileged user; CI runs as root.
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        try:
            yield b
        finally:
            await b.close()


@contextlib.asynccontextmanager
async def live(model: Any, osc_port: int, voices: int = 1, tempo: float = 240.0) -> AsyncIterator[tuple[Server, str]]:
    overrides = {"osc.port": osc_port, "midi.output": "none", "recording.dir": "", "server.voices": voices,
                 "voice_defaults.tempo": tempo, "web.port": 0, "server.log_level": "warning"}
    async with serving(config.load(None, overrides), overrides=overrides, model=model) as srv:
        web = next(t for t in srv.transports if isinstance(t, WebTransport))
        yield srv, web.url


async def wait_js(page: Any, expression: str, arg: Any = None, timeout: float = 30.0) -> Any:
    """Poll a JavaScript function of ``arg`` until it returns something truthy.  (Playwright's own
    waiting polls by evaluating a string inside the page, which the page's Content-Security-Policy,
    no eval, rightly refuses.)"""
    async with asyncio.timeout(timeout):
        while not (v := await page.evaluate(expression, arg)):
            await asyncio.sleep(0.05)
    return v


async def open_page(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A page at ``url`` with its console errors and uncaught exceptions collected."""
    page = await browser.new_page(viewport={"width": 1400, "height": 1000})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"uncaught: {e}"))
    await page.goto(url)
    await wait_js(page, "() => window.folkrnn && window.folkrnn.stats.hellos >= 1")
    return page, problems


@pytest.mark.asyncio
async def test_the_page_draws_the_tune_as_it_is_written(model: Any, browser: Any, free_udp_port: int) -> None:
    async with live(model, free_udp_port, voices=2) as (srv, url):
        page, problems = await open_page(browser, url)
        counts: list[int] = []  # notes and rests in voice 1's notation, one tune, check after check
        tune = None
        while len(set(counts)) < 4:
            c = (await page.evaluate("window.folkrnn.check()"))["1"]
            if c["tune"] != tune:
                tune, counts = c["tune"], []
            assert c["drawnNotes"] == c["noteTokens"], c  # every note token drawn, no more
            counts.append(c["drawnNotes"])
            await asyncio.sleep(0.15)
        assert counts == sorted(counts) and counts[-1] > counts[0]
        web = next(t for t in srv.transports if isinstance(t, WebTransport))
        shown = await page.evaluate("window.folkrnn.page.voices.get('1').tune.tokens")
        assert shown == web.book.current["1"].tokens[:len(shown)]  # the server's very tokens, in order
        await page.wait_for_selector("section[data-voice='1'] .score g.playing")  # the sounding note
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "page.png"
        await page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert problems == []
        assert await page.evaluate("window.folkrnn.stats.gaps") == 0


# Voice 1's lines of the tune being written, the first one's SVG kept in the page to compare with later.
KEEP_FIRST_LINE = """() => {
  const lines = document.querySelectorAll("section[data-voice='1'] .score .score-line");
  const v = window.folkrnn.page.voices.get("1");
  if (lines.length < 2 || !v.tune) return null;
  window.keptLine = { svg: lines[0].querySelector("svg"), tune: v.tune.number, tokens: v.tune.tokens.length,
                      renders: window.folkrnn.stats.renders };
  return window.keptLine.tune;
}"""
# Whether the tune has grown and been redrawn since, or another tune began.
MOVED_ON = """() => {
  const v = window.folkrnn.page.voices.get("1");
  const k = window.keptLine;
  return v.tune.number !== k.tune
    || (v.tune.tokens.length >= k.tokens + 12 && window.folkrnn.stats.renders >= k.renders + 3);
}"""
# Whether the first line kept its SVG, and marking its first note as sounding (as a note event from
# the server does) shows on it; then the mark goes back to the note really sounding.
FIRST_LINE_KEPT = """() => {
  const v = window.folkrnn.page.voices.get("1");
  const first = document.querySelector("section[data-voice='1'] .score .score-line svg");
  const line = v.score.lines[0];
  const j = line.offsets.findIndex((o, j) => o >= 0 && /^[=^_]?[A-Ga-g]/.test(v.tune.tokens[line.first + j]));
  const marked = v.score.highlight(line.first + j);
  const shown = first.querySelectorAll("g.abcjs-note.playing").length;
  v.score.highlight(v.playing);
  return { sameTune: v.tune.number === window.keptLine.tune, sameSvg: first === window.keptLine.svg,
           inPage: window.keptLine.svg.isConnected, marked, shown };
}"""


@pytest.mark.asyncio
async def test_finished_lines_are_drawn_once_and_still_highlighted(model: Any, browser: Any,
                                                                   free_udp_port: int) -> None:
    # The tune being written is a stack of lines: once a line is followed by another, its notation is
    # never drawn again (redrawing the whole tune each time took the CPU the server's notes need), and
    # a note sounding on it is still marked (the player sounds notes a little behind the generator).
    async with live(model, free_udp_port) as (_, url):
        page, problems = await open_page(browser, url)
        for _ in range(3):  # a tune may end between the two looks: then look again in the next one
            await wait_js(page, KEEP_FIRST_LINE, timeout=90)
            await wait_js(page, MOVED_ON, timeout=60)
            await page.evaluate("window.folkrnn.check()")  # draws what is pending
            kept = await page.evaluate(FIRST_LINE_KEPT)
            if kept["sameTune"]:
                break
        assert kept == {"sameTune": True, "sameSvg": True, "inPage": True, "marked": True, "shown": 1}
        c = (await page.evaluate("window.folkrnn.check()"))["1"]
        assert c["drawnNotes"] == c["noteTokens"], c  # all lines together: every note token, no more
        assert problems == []


@pytest.mark.asyncio
async def test_the_temperature_slider_drives_the_server(model: Any, browser: Any, free_udp_port: int) -> None:
    async with live(model, free_udp_port) as (srv, url):
        page, problems = await open_page(browser, url)
        row = page.locator("section[data-voice='1'] .cmd[data-command='temperature']")
        slider = row.locator("input[type=range]")
        await slider.scroll_into_view_if_needed()
        box = await slider.bounding_box()
        assert box is not None
        lo, hi = float(await slider.get_attribute("min") or 0), float(await slider.get_attribute("max") or 1)
        now = float(await slider.input_value())
        y = box["y"] + box["height"] / 2
        await page.mouse.move(box["x"] + (now - lo) / (hi - lo) * box["width"], y)
        await page.mouse.down()
        await page.mouse.move(box["x"] + 0.3 * box["width"], y, steps=8)  # dragged to about 3
        await page.mouse.up()
        shown = float(await row.locator("input.value").input_value())
        assert 2.0 < shown < 4.0
        await until(lambda: srv.voices["1"].voice.controls.temperature == shown, "the temperature applied")
        applied = page.locator("section[data-voice='1'] .log li.applied", has_text=f"applied temperature {shown:g} ")
        await applied.first.wait_for()  # seen in the server's feedback, on the page
        assert problems == []


@pytest.mark.asyncio
async def test_a_bad_value_shows_the_servers_error(model: Any, browser: Any, free_udp_port: int) -> None:
    async with live(model, free_udp_port) as (srv, url):
        page, problems = await open_page(browser, url)
        before = srv.voices["1"].voice.controls.temperature
        row = page.locator("section[data-voice='1'] .cmd[data-command='temperature']")
        await row.locator("input.value").fill("99")
        await row.locator("input.value").press("Enter")
        with pytest.raises(CommandError) as expected:
            COMMANDS.bind("temperature", [99], srv.context, "1")
        await row.locator(".error", has_text=expected.value.detail).wait_for()
        log = page.locator("section[data-voice='1'] .log li.error", has_text=expected.value.detail)
        await log.first.wait_for()
        assert srv.voices["1"].voice.controls.temperature == before
        assert problems == []


def _timing_errors(outs: list[MemoryOutput], t0: float, t1: float) -> list[float]:
    return [s.at - s.when for o in outs for s in o.sent
            if t0 <= s.when < t1 and s.msg.type in ("note_on", "note_off")]


async def _window(srv: Server, page: Any, url: str | None, outs: list[MemoryOutput], seconds: float) -> list[float]:
    """``seconds`` of note timing errors with the page at ``url`` open (None: no page); with the
    page open, then checks that it has every token and has drawn every note."""
    loop = asyncio.get_running_loop()
    if url is not None:
        await page.goto(url)
        await wait_js(page, "() => window.folkrnn && window.folkrnn.stats.hellos >= 1")
    t0 = loop.time()
    await asyncio.sleep(seconds)
    errors = _timing_errors(outs, t0, loop.time())
    if url is not None:
        totals = {name: lv.voice.total_steps - 1 for name, lv in srv.voices.items()}
        await wait_js(page,  # every token generated so far has reached the page
                      "t => Object.entries(t).every(([v, n]) => window.folkrnn.page.voices.get(v).lastTotal >= n)",
                      totals)
        check = await page.evaluate("window.folkrnn.check()")
        stats = await page.evaluate("window.folkrnn.stats")
        assert stats["gaps"] == 0 and stats["stepMismatch"] == 0, stats
        for name, c in check.items():
            assert c["drawnNotes"] == c["noteTokens"], (name, c)
        await page.goto("about:blank")
    return errors


@pytest.mark.slow
@pytest.mark.asyncio
async def test_the_page_keeps_up_with_four_voices_at_240_bpm(model: Any, browser: Any, free_udp_port: int) -> None:
    # 60 s with the page open, in two windows of 30 s with the page reloaded between them: every
    # token reaches it, every note token is drawn.  The note timing with the page open vs closed
    # is a performance figure, so it is measured in benchmarks/bench_web.py and reported in
    # docs/benchmarks.md, not asserted here (the project keeps timing targets out of tests).
    async with live(model, free_udp_port, voices=4) as (srv, url):
        outs = []
        for lv in srv.voices.values():
            out = MemoryOutput(f"timing-{lv.name}")
            out.open()
            lv.player.outputs.append(out)
            outs.append(out)
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        notes = await _window(srv, page, url, outs, 30.0)
        notes += await _window(srv, page, url, outs, 30.0)
        assert len(notes) > 800  # four voices really played while the page drew them
