"""``folkrnn-live.pd``: the Pd performer surface and its two subpatches."""

from __future__ import annotations

from patchgen.pd import PdCanvas
from patchgen.pd_live_controls import pd_controls_logic
from patchgen.pd_live_feedback import pd_feedback_logic
from patchgen.surface import (
    PITCH_CLASSES,
    SNIP_LAYERS,
    TRANSPORT,
    rcv,
    show,
    snd,
    span,
)


def pd_live() -> str:
    """``folkrnn-live.pd``: the performer's surface."""
    c = PdCanvas(1040, 840)
    c.text(20, 10, "folkrnn-live control surface: connect \\, then play. Every control listens to "
           "folkrnn-<name> (see patches/README.md) \\; any patch can also [s folkrnn-cmd] with "
           "messages such as [temperature 0.8( or [global status(.", 130)

    _connection_and_transport(c)
    _sampler_column(c)
    x = _displays_and_engine(c)
    c.subpatch(x + 240, 730, pd_controls_logic())
    c.subpatch(x + 240, 760, pd_feedback_logic())
    return c.render() + "\n"


def _connection_and_transport(c: PdCanvas) -> None:
    # Connection row.
    y = 70
    c.text(20, y, "server")
    c.symbolatom(80, y, 12, rcv("host"), snd("host"))
    c.text(190, y, "port")
    c.floatatom(230, y, 6, rcv("port"), snd("port"))
    c.text(300, y, "feedback port")
    c.floatatom(400, y, 6, rcv("fbport"), snd("fbport"))
    c.text(470, y, "voice")
    c.symbolatom(515, y, 5, snd("voice-in"), snd("voice"))  # folkrnn-voice: see pd_controls_logic
    c.bng(20, y + 35, rcv("connect"), snd("connect"), "connect")
    c.bng(140, y + 35, rcv("disconnect"), snd("disconnect"), "disconnect")
    c.tgl(270, y + 35, show("connected"), "empty", "connected")
    c.bng(400, y + 35, rcv("ping"), snd("ping"), "ping")
    c.text(470, y + 35, "pong")
    c.listbox(515, y + 35, 6, show("pong"))

    # Transport row.
    y = 160
    c.text(20, y, "transport")
    for i, ctl in enumerate(TRANSPORT):
        c.bng(100 + i * 85, y, rcv(ctl.name), snd(ctl.name), ctl.name)


def _sampler_column(c: PdCanvas) -> None:
    # Sampler column.
    y = 220
    c.text(20, y, "--- the network (applied before the next token) ---")
    c.hsl(20, y + 40, *span("temperature"), rcv("temperature"), snd("temperature"), "temperature")
    c.floatatom(190, y + 40, 6, snd("temperature"))
    c.hsl(260, y + 40, *span("tempo"), rcv("tempo"), snd("tempo"), "tempo_(BPM)")
    c.floatatom(430, y + 40, 6, snd("tempo"))

    c.hradio(20, y + 95, 12, rcv("bias-pc"), snd("bias-pc"), "bias_pitch_class")
    c.text(20, y + 117, "".join(f"{n:<3}" for n in PITCH_CLASSES).rstrip())
    c.hsl(260, y + 95, *span("bias"), rcv("bias"), snd("bias"), "bias_amount")
    c.floatatom(430, y + 95, 6, snd("bias"))
    c.bng(500, y + 95, rcv("bias-clear"), snd("bias-clear"), "bias_clear")

    c.tgl(20, y + 150, rcv("suppress-bars"), snd("suppress-bars"), "suppress_bar_lines_for")
    c.floatatom(215, y + 150, 7, rcv("suppress-steps"), snd("suppress-steps"))
    c.text(280, y + 150, "steps (0 = until cleared \\; off = allow again)")

    c.text(20, y + 185, "snip a random fraction")
    c.floatatom(175, y + 185, 5, rcv("snip-fraction"), snd("snip-fraction"))
    c.text(230, y + 185, "of a layer's units \\, seed")
    c.floatatom(400, y + 185, 8, rcv("snip-seed"), snd("snip-seed"))
    for i, layer in enumerate(SNIP_LAYERS):
        c.bng(20 + i * 120, y + 215, rcv(f"snip-{layer}"), snd(f"snip-{layer}"), f"snip_layer_{layer}")
        c.bng(20 + i * 120, y + 245, rcv(f"restore-{layer}"), snd(f"restore-{layer}"), f"restore_{layer}")
    c.bng(380, y + 245, rcv("restore"), snd("restore"), "restore_all")

    c.tgl(20, y + 285, rcv("force"), snd("force"), "force_0.7_generated_+_0.3_@pitch")
    c.text(20, y + 320, "steer component")
    c.floatatom(135, y + 320, 5, rcv("steer-component"), snd("steer-component"))
    c.hsl(200, y + 320, *span("steer-alpha"), rcv("steer-alpha"), snd("steer-alpha"), "steer_alpha")
    c.floatatom(370, y + 320, 6, snd("steer-alpha"))
    c.bng(440, y + 320, rcv("steer-clear"), snd("steer-clear"), "steer_clear")
    c.bng(20, y + 360, rcv("clear"), snd("clear"), "clear_all_interventions_(temperature_stays)")


def _displays_and_engine(c: PdCanvas) -> int:
    """The feedback displays, the output toggles and [folkrnn-control]; returns the right column's x."""
    # Feedback displays (right column).
    x = 600
    c.text(x, 160, "--- what comes back ---")
    c.text(x, 190, "tune / step")
    c.listbox(x + 90, 190, 12, show("pos"))
    c.text(x, 220, "note")
    c.listbox(x + 90, 220, 16, show("note"))
    c.text(x, 250, "tokens")
    r_tok = c.obj(x + 90, 250, f"r {show('tokens')}")
    tok_box = c.msg(x + 90, 280, "-", 40)
    c.connect(r_tok, 0, tok_box)
    c.text(x, 360, "applied")
    r_app = c.obj(x + 90, 360, f"r {show('applied')}")
    app_box = c.msg(x + 90, 390, "-", 40)
    c.connect(r_app, 0, app_box)
    c.text(x, 440, "error")
    r_err = c.obj(x + 90, 440, f"r {show('error')}")
    err_box = c.msg(x + 90, 470, "-", 40)
    c.connect(r_err, 0, err_box)

    # Output row.
    y = 640
    c.text(20, y, "--- the notes here (the server plays MIDI itself \\; these are extra) ---")
    c.tgl(20, y + 30, rcv("midi"), snd("midi"), "MIDI_out_([noteout])")
    c.tgl(250, y + 30, rcv("sine"), snd("sine"), "sine_voice_(turns_DSP_on)")
    c.tgl(520, y + 30, rcv("print"), snd("print"), "print_feedback_to_the_Pd_window")

    # The engine: commands in, feedback out.
    r_local = c.obj(x, 730, f"r {snd('cmd')}")
    r_global = c.obj(x + 100, 730, "r folkrnn-cmd")
    ctl = c.obj(x, 760, "folkrnn-control")
    s_fb = c.obj(x, 790, f"s {snd('fb')}")
    s_voice = c.obj(x + 100, 790, f"s {snd('fb-voice')}")
    s_state = c.obj(x + 220, 790, f"s {show('connected')}")
    c.connect(r_local, 0, ctl)
    c.connect(r_global, 0, ctl)
    c.connect(ctl, 0, s_fb)
    c.connect(ctl, 1, s_voice)
    c.connect(ctl, 2, s_state)
    return x
