"""The whole config checked before anything opens (issue 12 §2).

Every key is checked by its own row (:mod:`.config_keys`) as the file is read, but what a row
cannot say was checked only by the part that used it: a bad ``mqtt.prefix`` or ``[[midi_in.map]]``
table was reported after the OSC socket was open, and a ``midi.dir`` that is a file ended voice
after voice with ``FileExistsError`` while the server played on in silence.  :func:`check` runs
at the end of ``config.load`` (so ``folkrnn-live serve`` exits 2 with one line before loading the
model) and again at start-up; :func:`check_mappings` needs the model's dimensions, so it runs at
start-up right after the model loads, still before the first socket, port or file is opened.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from folkrnn_live.server.runtime.config_keys import ConfigError

log = logging.getLogger("folkrnn_live.server")

# Directories the server writes into from the start, and when it does (recording.dir is checked
# by record_start, which answers the performer with an /error: the music plays on without it).
_DIRS = (("midi.dir", lambda v: v["midi.output"] in ("file", "auto")),)


def check(values: Mapping[str, Any], where: str = "config") -> None:
    """Raise ConfigError naming the key for anything the server would only find out later."""
    from folkrnn_live.server.runtime.midi_in_settings import MidiInSettings
    from folkrnn_live.server.runtime.mqtt_settings import MqttSettings
    from folkrnn_live.server.transports.web.settings import WebSettings

    MqttSettings.from_config(values, where)  # prefix, TLS files, password file, ...
    MidiInSettings.from_config(values, where)
    WebSettings.from_config(values, where)
    for key, used in _DIRS:
        if not used(values):
            continue
        path = Path(values[key])
        # The nearest part that exists must be a directory: a file there can never become one.
        probe = path
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        if probe.exists() and not probe.is_dir():
            what = "is" if probe == path else f"is inside {probe}, which is"
            raise ConfigError(f"{where}: {key} = {str(path)!r} {what} a file, not a directory; "
                              "allowed: a directory, or a path where one can be made")
    for entry in values.get("osc.pinned", ()):
        check_host_port(entry, f"{where}: osc.pinned entry")
    soundfont = values.get("midi.soundfont", "")
    if soundfont and not Path(soundfont).expanduser().is_file():
        raise ConfigError(f"{where}: midi.soundfont = {soundfont!r} is not a file; allowed: a .sf2 or .sf3 file, "
                          "or empty for an installed General MIDI soundfont")


def check_all(values: Mapping[str, Any], registry: Any, ctx: Any) -> None:
    """Everything, at start-up once the model is loaded (a config may be built without ``load``),
    and the one warning about exposure."""
    check(values)
    check_mappings(values, registry, ctx)
    warn_exposure(values)


def check_host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(f"{what} must be host:port, port 1..65535 (e.g. 127.0.0.1:9001); got {text!r}")
    return host, int(port)


def check_mappings(values: Mapping[str, Any], registry: Any, ctx: Any) -> None:
    """``[[midi_in.map]]`` tables against the loaded model (raises MidiMapError, a ValueError)."""
    if values.get("midi_in.enabled"):
        from folkrnn_live.server.commands.midi_map import parse_mappings

        parse_mappings(values.get("midi_in.map") or [], registry, ctx, "midi_in.map")


def warn_exposure(values: Mapping[str, Any]) -> None:
    """One warning when OSC listens beyond loopback with no ``osc.allow`` list: anybody who can
    reach the port can steer the voices (``osc.host = "0"`` is 0.0.0.0, every interface)."""
    host = str(values["osc.host"])
    if not values["osc.enabled"] or values["osc.allow"] or _is_loopback(host):
        return
    log.warning("OSC listens on %r (not loopback) and osc.allow is empty: any host that reaches port %d can "
                "send commands; set osc.allow to your network (e.g. [\"192.168.1.0/24\"])", host, values["osc.port"])


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "0", a host name: assume it reaches beyond this machine
