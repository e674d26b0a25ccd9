"""The live score and control page (docs/web.md): notation as it is written, controls from the registry.

:func:`open_transport` is what the server's lifecycle calls, like the other transports'; aiohttp is
imported only when the page is on, so ``--no-web`` costs nothing and the config can import
:mod:`.settings` without it.
"""

from __future__ import annotations

from typing import Any


def open_transport(server: Any) -> Any:
    """The page's server as an async context manager, or None when ``web.enabled`` is false."""
    from folkrnn_live.server.transports.web.settings import WebSettings

    settings = WebSettings.from_config(server.config.values)
    if not settings.enabled:
        return None
    from folkrnn_live.server.transports.web.transport import WebTransport

    return WebTransport(server, settings)
