"""The performer patches (patches/), checked for real: Pure Data talks to the live server.

Static checks need nothing: the patches are what ``patches/generate.py`` writes, the Max patcher is
valid Max JSON, and both surfaces send only commands the server knows.  The ``pd`` tests start the
real server in-process (a tiny random model, free ports on 127.0.0.1) and the real Pd binary
headless, and read what Pd prints: every Pd run ends when the test has seen what it needs (it sends
the patch an OSC ``/pdtest/quit``), or after the patch's own time limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import re
import shutil
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import free_port, serving
from pythonosc.osc_message_builder import OscMessageBuilder

from folkrnn_live.server.commands.catalog import COMMANDS
from folkrnn_live.server.runtime import config
from folkrnn_live.server.runtime.service import Server

ROOT = Path(__file__).resolve().parents[1]
PATCHES = ROOT / "patches"
TEST_PATCHES = Path(__file__).resolve().parent / "pd"
PD = shutil.which("pd")
WAIT = 20.0  # upper bound on any wait (a loaded 2-core machine); never a timing assertion
PD_LIMIT_MS = 10_000  # each Pd run quits by itself after this long at most


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("folkrnn_patch_generator", PATCHES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def osc(address: str, *args: Any) -> bytes:
    b = OscMessageBuilder(address)
    for a in args:
        b.add_arg(a)
    return b.build().dgram


def pd_atoms(text: str) -> list[str]:
    """Split what Pd's [print] wrote into atoms: spaces separate them unless escaped (``\\ ``),
    and ``\\,`` ``\\;`` ``\\$`` stand for the characters themselves."""
    return [re.sub(r"\\(.)", r"\1", a) for a in re.split(r"(?<!\\) ", text)]


# --- static -----------------------------------------------------------------------------------------


def test_patches_are_what_the_generator_writes(tmp_path: Path) -> None:
    gen = _generator()
    assert gen.main(["--check"]) == 0, "run python3 patches/generate.py and commit the patches"
    assert gen.main(["--dir", str(tmp_path)]) == 0
    for name in gen.OUTPUTS:
        assert (tmp_path / name).read_text(encoding="utf-8") == (PATCHES / name).read_text(encoding="utf-8")


def _max_boxes() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    doc = json.loads((PATCHES / "folkrnn-live.maxpat").read_text(encoding="utf-8"))
    patcher = doc["patcher"]
    boxes = [b["box"] for b in patcher["boxes"]]
    by_id = {b["id"]: b for b in boxes}
    assert len(by_id) == len(boxes), "box ids must be unique"
    return by_id, [line["patchline"] for line in patcher["lines"]]


def test_max_patcher_is_valid_max_json() -> None:
    doc = json.loads((PATCHES / "folkrnn-live.maxpat").read_text(encoding="utf-8"))
    patcher = doc["patcher"]
    assert patcher["fileversion"] == 1 and patcher["classnamespace"] == "box"
    assert {"major", "minor", "revision"} <= patcher["appversion"].keys()
    assert len(patcher["rect"]) == 4
    boxes, lines = _max_boxes()
    for box in boxes.values():
        assert {"id", "maxclass", "numinlets", "numoutlets", "patching_rect"} <= box.keys(), box
        assert len(box["patching_rect"]) == 4 and all(isinstance(v, float) for v in box["patching_rect"])
        assert len(box.get("outlettype", [])) == box["numoutlets"], box
        if box["maxclass"] in ("newobj", "message", "comment"):
            assert isinstance(box["text"], str), box
    for line in lines:
        (src, outlet), (dst, inlet) = line["source"], line["destination"]
        assert src in boxes and dst in boxes, line
        assert 0 <= outlet < boxes[src]["numoutlets"], (line, boxes[src])
        assert 0 <= inlet < boxes[dst]["numinlets"], (line, boxes[dst])
    texts = [b["text"] for b in boxes.values() if b["maxclass"] == "newobj"]
    assert any(t.startswith("udpsend ") for t in texts) and any(t.startswith("udpreceive ") for t in texts)


def _pd_receives(path: Path) -> set[str]:
    """The ``folkrnn-<name>`` names the Pd surface listens to (GUI receive names and [r ...])."""
    lines = [line for line in path.read_text(encoding="utf-8").split(";\n") if not line.startswith("#X text")]
    names = set(re.findall(r"(?<![\w$-])(folkrnn-[a-z0-9-]+)", "\n".join(lines))) - {"folkrnn-control"}
    return {n for n in names if not n.startswith("folkrnn-show-")}  # displays, not controls


def test_max_surface_has_the_pd_surface_controls() -> None:
    boxes, _ = _max_boxes()
    max_receives = {b["text"].split()[1] for b in boxes.values()
                    if b["maxclass"] == "newobj" and b["text"].startswith("r ")}
    pd = _pd_receives(PATCHES / "folkrnn-live.pd")
    # Max connects with one message box ("connect HOST PORT FBPORT", also [r folkrnn-connect-to]).
    missing = pd - max_receives - {"folkrnn-host", "folkrnn-port", "folkrnn-fbport", "folkrnn-connect"}
    assert not missing, f"controls of the Pd surface missing from the Max surface: {sorted(missing)}"
    assert {"folkrnn-temperature", "folkrnn-suppress-bars", "folkrnn-snip-2", "folkrnn-steer-alpha"} <= pd


def test_both_surfaces_have_every_control() -> None:
    names = {f"folkrnn-{c.name}" for c in _generator().CONTROLS}
    boxes, _ = _max_boxes()
    max_receives = {b["text"].split()[1] for b in boxes.values()
                    if b["maxclass"] == "newobj" and b["text"].startswith("r ")}
    assert names - _pd_receives(PATCHES / "folkrnn-live.pd") == set()
    assert names - max_receives == {"folkrnn-host", "folkrnn-port", "folkrnn-fbport"}  # one connect message



def test_slider_ranges_lie_inside_the_commands_ranges() -> None:
    # A slider thrown to its end must send a value the server accepts, not an /error.
    drives = {"temperature": ("temperature", "value"), "tempo": ("tempo", "bpm"), "bias": ("bias", "amount"),
              "steer-alpha": ("steer", "alpha")}
    sliders = [c for c in _generator().CONTROLS if c.lo != c.hi]
    assert {c.name for c in sliders} == set(drives)
    for c in sliders:
        command, argument = drives[c.name]
        arg = next(a for a in COMMANDS.get(command).args if a.name == argument)
        assert isinstance(arg.lo, float) and isinstance(arg.hi, float)
        assert arg.lo <= c.lo < c.hi <= arg.hi, c.name

def _commands_sent(texts: list[str]) -> set[str]:
    """Command names in message boxes ``name args...`` (``global name`` for global ones)."""
    out = set()
    for t in texts:
        for part in re.split(r"\\?[,;]", t):
            words = part.split()
            if words and words[0] == "global":
                words = words[1:]
            if words and re.fullmatch(r"[a-z_]+", words[0]):
                out.add(words[0])
    return out


def test_the_surfaces_send_only_commands_the_server_knows() -> None:
    # Besides the server's commands: [folkrnn-control]'s own messages and Pd/Max object messages.
    known = set(COMMANDS.names()) | {"connect", "disconnect", "voice", "global", "set", "listen", "port", "host",
                                     "zlclear", "pd", "list"}
    pd_texts = [re.sub(r", f \d+$", "", line.split(" ", 4)[4]) for p in PATCHES.glob("*.pd")
                for line in p.read_text(encoding="utf-8").split(";\n") if line.startswith("#X msg ")]
    boxes, _ = _max_boxes()
    max_texts = [b["text"] for b in boxes.values() if b["maxclass"] == "message"]
    for texts in (pd_texts, max_texts):
        sent = _commands_sent(texts)
        assert sent - known == set()
        assert {"temperature", "tempo", "bias", "suppress", "snip_random", "restore", "force", "steer", "start",
                "stop", "next", "reset", "subscribe"} <= sent


# --- with Pd --------------------------------------------------------------------------------------


class PdRun:
    """A headless Pd process whose printed lines are collected as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        async for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def printed(self, name: str) -> list[list[str]]:
        """The atoms of each ``[print name]`` line (without a leading ``list`` selector)."""
        out = []
        for line in self.lines:
            if line.startswith(name + ": "):
                atoms = pd_atoms(line[len(name) + 2:])
                out.append(atoms[1:] if atoms[:1] == ["list"] else atoms)
        return out

    def problems(self) -> list[str]:
        return [line for line in self.lines
                if "couldn't create" in line or line.startswith(("error:", "warning:")) or "connection failed" in line]

    async def finish(self) -> int:
        try:
            rc = await asyncio.wait_for(self.proc.wait(), WAIT)
        finally:
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
            await self._reader
        return rc


@contextlib.asynccontextmanager
async def pd(*args: str) -> AsyncIterator[PdRun]:
    if PD is None:  # a real component, like the broker: missing is a failure, not a quiet skip
        pytest.fail("Pure Data (pd) is not on PATH: run scripts/test (it installs puredata-core)")
    proc = await asyncio.create_subprocess_exec(
        PD, "-nogui", "-noaudio", "-nomidi", "-stderr", *args,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    run = PdRun(proc)
    try:
        yield run
    finally:
        if proc.returncode is None:  # the test did not get to the end: no need to wait for Pd
            proc.kill()
            await run.finish()


async def until(cond: Callable[[], Any], what: str, run: PdRun | None = None) -> Any:
    """Wait (at most WAIT seconds) for ``cond()`` to be true; fail saying what was missing."""
    loop = asyncio.get_running_loop()
    end = loop.time() + WAIT
    while _pending(result := cond()):
        if run is not None and run.proc.returncode is not None:
            pytest.fail(f"Pd ended before {what}: {run.lines[-15:]}")
        if loop.time() > end:
            pytest.fail(f"timed out waiting for {what}: {(run.lines[-15:] if run else '')}")
        await asyncio.sleep(0.02)
    return result


def _pending(result: Any) -> bool:
    """Not there yet: None, False or an empty list (0 is a real step number)."""
    return result is None or result is False or (isinstance(result, list) and not result)


@contextlib.asynccontextmanager
async def server(model_dir: Path, tmp: Path, voices: int = 1) -> AsyncIterator[tuple[Server, int]]:
    port = free_port()
    overrides = {"model.path": str(model_dir), "osc.port": port, "midi.output": "none", "server.voices": voices,
                 "recording.dir": str(tmp / "rec"), "voice_defaults.tempo": 600, "server.state_interval": 0.0}
    async with serving(config.load(None, overrides), overrides=overrides) as srv:
        yield srv, port


@contextlib.contextmanager
def udp_sender() -> Iterator[Callable[..., None]]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        def send(port: int, address: str, *args: Any) -> None:
            s.sendto(osc(address, *args), ("127.0.0.1", port))
        yield send


@pytest.mark.pd
@pytest.mark.asyncio
@pytest.mark.parametrize("patch", ["folkrnn-live.pd", "folkrnn-control.pd"])
async def test_patches_load_in_pd_without_errors(patch: str) -> None:
    async with pd("-open", str(PATCHES / patch), "-send", "pd quit") as run:
        rc = await run.finish()
    assert rc == 0
    assert run.problems() == []


@pytest.mark.pd
@pytest.mark.asyncio
async def test_pd_sends_commands_and_receives_the_feedback(tiny_model_dir: Path, tmp_path: Path) -> None:
    """tests/pd/roundtrip.pd: subscribe, temperature, bias and suppress bar lines for 30 steps, a
    bad value and an unknown command, a ping; everything that comes back is printed by Pd."""
    async with server(tiny_model_dir, tmp_path) as (srv, port):
        vocab = srv.voices["1"].voice.vocab
        bars = set(vocab.decode(vocab.select("@bar")))
        pd_port = free_port()
        async with pd("-open", str(TEST_PATCHES / "roundtrip.pd"),
                      "-send", f"pdtest {port} {pd_port} {PD_LIMIT_MS}") as run:

            def fb(name: str) -> list[list[str]]:
                return [a[3:] for a in run.printed("fb") if a[:3] == ["folkrnn", "1", name]]

            def suppress_step() -> int | None:
                steps = [int(a[0]) for a in fb("applied") if a[1].startswith("suppress ")]
                return steps[0] if steps else None

            s: int = await until(suppress_step, "the applied suppress", run)
            await until(lambda: any(int(a[3]) >= s + 60 for a in fb("token")), "60 tokens after the suppress", run)
            await until(lambda: len(fb("note")) >= 3, "notes", run)
            await until(lambda: ["pong", "42"] in run.printed("fb"), "/pong", run)
            with udp_sender() as send:
                send(pd_port, "/pdtest/quit")
                rc = await run.finish()
    assert rc == 0 and run.problems() == []

    # The bad value and the unknown command came back as /error, naming the argument.
    errors = [a[1:] for a in run.printed("fb") if a[0] == "error"]
    (temp,) = [e for e in errors if e[0] == "/folkrnn/1/temperature"]
    assert temp[1] == "value" and "hot" in temp[2] and "0.01..10" in temp[2]
    (nope,) = [e for e in errors if e[0] == "/folkrnn/1/nope"]
    assert nope[1] == "" and "unknown command" in nope[2]
    assert ["pong", "42"] in run.printed("fb")
    applied = [a[1] for a in fb("applied")]
    assert "bias @bar 4.0" in applied
    temps = [float(t.split()[1]) for t in applied if t.startswith("temperature ")]
    assert temps == [pytest.approx(0.9)]  # Pd floats are 32-bit: 0.8999999761581421

    # The notes are MIDI notes on voice 1's channel; the tokens arrived in order, every one of them.
    for pitch, velocity, duration, channel in (map(float, n) for n in fb("note")):
        assert 0 <= pitch <= 127 and 1 <= velocity <= 127 and duration > 0 and channel == 0
    tokens = {int(a[3]): a[2] for a in fb("token")}
    assert set(range(s, s + 60)) <= tokens.keys()
    # No bar line while suppressed (30 steps), and bar lines again after (the bias makes them likely).
    assert not [tokens[i] for i in range(s, s + 30) if tokens[i] in bars]
    assert [tokens[i] for i in range(s + 30, s + 60) if tokens[i] in bars]


@pytest.mark.pd
@pytest.mark.asyncio
async def test_the_live_patch_drives_the_server(tiny_model_dir: Path, tmp_path: Path) -> None:
    """patches/folkrnn-live.pd as a performer uses it, its controls moved through their receive
    names (``-send`` at start, then tests/pd/bridge.pd while it runs).  Two voices: the surface
    controls voice 1 and shows voice 1 (MIDI channel 0) until "all" is selected."""
    async with server(tiny_model_dir, tmp_path, voices=2) as (srv, port):
        lv = srv.voices["1"]
        fb_port, bridge = free_port(), free_port()
        controls = [
            "folkrnn-host symbol 127.0.0.1", f"folkrnn-port {port}", f"folkrnn-fbport {fb_port}",
            "folkrnn-print 1", "folkrnn-midi 1", "folkrnn-sine 1", "folkrnn-connect bang",
            "folkrnn-temperature 0.5", "folkrnn-tempo 400", "folkrnn-bias-pc 7", "folkrnn-bias 3",
            "folkrnn-suppress-steps 16", "folkrnn-suppress-bars 1", "folkrnn-snip-fraction 0.25",
            "folkrnn-snip-seed 5", "folkrnn-snip-2 bang", "folkrnn-force 1",
            "folkrnn-steer-component 2", "folkrnn-steer-alpha 4",
            "folkrnn-cmd temperature 99",  # out of range: an /error comes back
            f"pdtest-bridge {bridge} {PD_LIMIT_MS}",
        ]
        sends = [arg for c in controls for arg in ("-send", c)]
        async with pd("-open", str(PATCHES / "folkrnn-live.pd"), "-open", str(TEST_PATCHES / "bridge.pd"),
                      *sends) as run:

            def logged() -> list[tuple[str, dict[str, Any]]]:
                return [(e.command, dict(e.args)) for e in lv.source.log]

            expected = [
                ("temperature", {"value": 0.5}),
                ("tempo", {"bpm": 400.0}),
                ("bias_clear", {}),
                ("bias", {"selector": "pc:7", "amount": 3.0}),
                ("suppress", {"steps": 16, "selectors": ("@bar",)}),
                ("snip_random", {"layer": 2, "fraction": 0.25, "seed": 5, "mode": "out"}),
                ("steer", {"component": 2, "alpha": 4.0}),
            ]
            await until(lambda: all(e in logged() for e in expected), "the commands in the server's log", run)
            assert any(c == "force" and a["selector"] == "@pitch" and a["steps"] == 0 for c, a in logged())

            def printed(name: str) -> list[list[str]]:
                return [a[1:] for a in run.printed("folkrnn") if a[0] == name]

            await until(lambda: len(printed("note")) >= 3 and printed("token"), "feedback printed by the patch", run)
            await until(lambda: printed("error"), "the /error", run)
            # The displays show it too (bridge.pd prints what [s folkrnn-show-<name>] gets).
            await until(lambda: run.printed("show-error") and run.printed("show-note")
                        and run.printed("show-tokens"), "the displays", run)
            assert run.printed("show-connected")[0] == ["1"]
            assert run.printed("show-error")[0][:3] == ["set", "/folkrnn/1/temperature", "value"]
            assert all(len(a) == 4 and 0 <= float(a[0]) <= 127 for a in run.printed("show-note"))
            assert all(a[0] == "1" and a[1].isdigit() for a in run.printed("show-pos"))  # tune, step
            shown = run.printed("show-tokens")[-1]
            assert shown[0] == "set" and 1 <= len(shown[1:]) <= 24 and set(shown[1:]) <= set(lv.voice.vocab.tokens)
            # The sine voice sounds (DSP runs with -noaudio; tests/pd/bridge.pd prints its level).
            await until(lambda: run.printed("sine-level"), "the sine voice", run)
            assert all(40 <= float(a[0]) <= 100 for a in run.printed("sine-level"))
            assert printed("error")[0][:2] == ["/folkrnn/1/temperature", "value"]

            def channels() -> set[str]:
                return {a[3] for a in printed("note")}

            # Voice 2 (channel 1) plays too, but only voice 1's notes reach the surface.
            await until(lambda: srv.voices["2"].player.stats.notes >= 3, "voice 2's notes")
            n = len(printed("note"))
            await until(lambda: len(printed("note")) > n + 2, "more notes of voice 1", run)
            assert channels() == {"0"}

            with udp_sender() as send:
                # Transport and the per-layer restore, while it runs.
                send(bridge, "/pdtest/send", "folkrnn-stop", "bang")
                await until(lambda: lv.player.state == "stopped", "stop", run)
                send(bridge, "/pdtest/send", "folkrnn-start", "bang")
                await until(lambda: lv.player.state == "playing", "start", run)
                send(bridge, "/pdtest/send", "folkrnn-restore-2", "bang")
                send(bridge, "/pdtest/send", "folkrnn-force", 0)
                send(bridge, "/pdtest/send", "folkrnn-suppress-bars", 0)
                send(bridge, "/pdtest/send", "folkrnn-voice", "symbol", "all")
                send(bridge, "/pdtest/send", "folkrnn-next", "bang")
                send(bridge, "/pdtest/send", "folkrnn-ping", "bang")
                await until(lambda: run.printed("show-pong"), "the pong display", run)
                assert run.printed("show-pong") == [["1"]]
                last = ["restore", "force_clear", "suppress_clear", "next"]
                await until(lambda: [c for c, _ in logged()][-4:] == last, f"{last} (next to all voices)", run)
                await until(lambda: "1" in channels(), "voice 2's notes once 'all' is selected", run)
                send(bridge, "/pdtest/quit")
                rc = await run.finish()
    assert rc == 0 and run.problems() == []
    assert lv.source.log[-4].args == {"layer": 2}
