"""The page's routes, and the checks every request passes.

* ``GET /``: the page; ``/static/...``: its scripts, styles and the vendored abcjs.
* ``GET /ws``: the WebSocket: commands in, feedback out (JSON; see docs/web.md).
* ``GET /api/schema``: the command registry as the page's controls are built from it.
* ``GET /tunes/<voice>/<tune>.abc`` and ``.mid``: a kept tune, as ABC or MIDI.

A web page on another site, open in the performer's browser, must not drive the server.  So every
request's ``Host`` must be a name of this server (a DNS-rebinding page reaches 127.0.0.1 under its
own name, and is refused), every WebSocket's ``Origin`` must be this server's own origin
(cross-site WebSocket hijacking), and the peer must be in ``web.allow``.  Responses forbid framing
and load scripts only from the server itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web

from folkrnn_live.server.commands.registry import ALL, CommandError
from folkrnn_live.server.transports.common import loads_bounded
from folkrnn_live.server.transports.feedback import error_feedback
from folkrnn_live.server.transports.web.transport import PageClient, WebTransport, close_clients

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"
TRANSPORT = web.AppKey("transport", WebTransport)
MAX_MESSAGE = 65_536  # bytes of one message from a page, at most
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")


def make_app(transport: WebTransport) -> web.Application:
    app = web.Application(middlewares=[guard], client_max_size=MAX_MESSAGE)
    app[TRANSPORT] = transport
    app.router.add_get("/", index)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/api/schema", api_schema)
    app.router.add_get(r"/tunes/{voice}/{tune:\d+}.{kind:abc|mid}", tune_file)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    app.on_shutdown.append(_on_shutdown)
    return app


async def _on_shutdown(app: web.Application) -> None:
    await close_clients(app[TRANSPORT])


# --- the checks -----------------------------------------------------------------------------------
def host_name(header: str) -> str:
    """The name of a ``Host`` header without its port: ``[::1]:7480`` -> ``::1``, lower case."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1:h.find("]")] if "]" in h else ""
    return h.rsplit(":", 1)[0] if h.count(":") == 1 else h


def origin_allowed(origin: str | None, names: frozenset[str], port: int) -> bool:
    """Whether a WebSocket's ``Origin`` is this server's own page (scheme, name and port)."""
    if not origin:
        return False
    try:
        u = urlsplit(origin)
        u_port = u.port or (443 if u.scheme == "https" else 80)
    except ValueError:
        return False
    return u.scheme in ("http", "https") and (u.hostname or "") in names and u_port == port


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    t: WebTransport = request.app[TRANSPORT]
    peer = request.remote or ""
    if not t.allowlist.allows(peer):
        t.stats.refused += 1
        return web.Response(status=403, text="forbidden: your address is not in web.allow\n")
    name = host_name(request.headers.get("Host", ""))
    if name not in t.settings.host_names():
        t.stats.refused += 1
        log.info("web: refused a request for Host %r from %s (allowed: %s; add names to web.hosts)",
                 request.headers.get("Host", ""), peer, ", ".join(sorted(t.settings.host_names())))
        return web.Response(status=403, text="forbidden: this server does not answer to that Host name\n")
    response = await handler(request)
    if not response.prepared:  # a WebSocket is already under way
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- pages and files ----------------------------------------------------------------------------
async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def api_schema(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[TRANSPORT].hello()["schema"])


async def tune_file(request: web.Request) -> web.StreamResponse:
    from folkrnn_live.server.transports.web.tunes import tune_abc, tune_midi

    t = request.app[TRANSPORT]
    voice, number, kind = request.match_info["voice"], int(request.match_info["tune"]), request.match_info["kind"]
    tune = t.book.find(voice, number)
    if tune is None:
        raise web.HTTPNotFound(text=f"voice {voice!r} has no kept tune {number} (the last {t.book.kept} are kept)\n")
    name = f"folkrnn-{voice}-{number}.{kind}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    # Made off the event loop: converting and rendering a tune takes milliseconds a note cannot wait.
    if kind == "abc":
        text = await asyncio.to_thread(tune_abc, tune)
        return web.Response(text=text, content_type="text/vnd.abc", headers=disposition)
    lv = t.server.voices.get(voice)
    settings = None if lv is None else lv.player.settings
    body = await asyncio.to_thread(tune_midi, tune, settings)
    return web.Response(body=body, content_type="audio/midi", headers=disposition)


# --- the WebSocket --------------------------------------------------------------------------------
async def websocket(request: web.Request) -> web.StreamResponse:
    t: WebTransport = request.app[TRANSPORT]
    origin = request.headers.get("Origin")
    if not origin_allowed(origin, t.settings.host_names(), t.port):
        t.stats.refused += 1
        log.info("web: refused a WebSocket from Origin %r (%s)", origin, request.remote)
        return web.Response(status=403, text="forbidden: WebSocket from another site\n")
    if len(t.clients) >= t.settings.max_clients:
        return web.Response(status=503, text=f"too many pages open (web.max_clients = {t.settings.max_clients})\n")
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_MESSAGE, compress=False)
    await ws.prepare(request)
    tcp = request.transport
    client = t.add_client(request.remote or "", ws, None if tcp is None else tcp.abort)
    client.push(json.dumps(t.hello(), separators=(",", ":")))
    writer = asyncio.get_running_loop().create_task(client.writer(), name=f"folkrnn-live {client.name} writer")
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                handle_message(t, client, msg.data)
            elif msg.type == WSMsgType.BINARY:
                client.reply(error_feedback(CommandError("", "binary messages are not understood",
                                                         allowed="JSON text (docs/web.md)")))
    finally:
        t.remove_client(client)
        writer.cancel()
    return ws


def handle_message(t: WebTransport, client: PageClient, text: str) -> None:
    """One message from a page: a command (through the registry, like OSC and MQTT) or a setting
    of this page (the activation strip).  Every error goes back to the page; none goes further."""
    if not t.limiter.take(client.peer):
        t.stats.limited += 1
        if t.limiter.notice_due(client.peer):
            client.reply(error_feedback(CommandError("", "rate limit exceeded; messages dropped",
                                                     allowed=f"{t.limiter.rate:g} messages/s per client")))
        return
    try:
        msg = loads_bounded(text)  # nesting and integer size bounded, as for MQTT
    except ValueError as exc:
        client.reply(error_feedback(CommandError("", f"not JSON ({exc})", allowed="a JSON object (docs/web.md)")))
        return
    if not isinstance(msg, dict):
        client.reply(error_feedback(CommandError("", "must be a JSON object", allowed='{"command": ..., ...}')))
        return
    if msg.get("type") == "activations":
        client.activations = bool(msg.get("on"))
        t.update_activations()
        return
    t.stats.commands += 1
    client.current_id = msg.get("id")
    try:
        t.server.dispatch(bind(t, msg), client)
    except CommandError as exc:
        t.stats.errors += 1
        client.reply(error_feedback(exc))
    finally:
        client.current_id = None


def bind(t: WebTransport, msg: dict[str, Any]) -> Any:
    """``{"command": name, "target": voice|"all"|null, "args": [...]|{...}|value}`` to a call."""
    reg, ctx = t.server.registry, t.server.context
    name, target = msg.get("command"), msg.get("target")
    if not isinstance(name, str):
        raise CommandError("", "command must be a command name", argument="command", allowed="see docs/commands.md")
    if target is not None and not isinstance(target, str):
        raise CommandError(name, "target must be a voice name, 'all' or null", argument="target",
                           allowed=", ".join((ALL, *ctx.voices)))
    cmd, tgt = reg.resolve([name] if target is None else [target, name], ctx)
    return reg.bind_json(cmd, msg.get("args"), ctx, tgt)
