"""How the MQTT bridge reaches its broker: the TLS context and the explanation of a failure."""

from __future__ import annotations

import ssl

import aiomqtt

from folkrnn_live.server.runtime.mqtt_settings import MqttSettings


class ClosingSSLSocket(ssl.SSLSocket):
    """An SSL socket that closes itself when its handshake fails.  paho-mqtt 2.x wraps the TCP
    socket with ``do_handshake_on_connect=False`` and calls ``do_handshake()`` without closing the
    socket when it raises, so every failed TLS retry would leave an open socket for the garbage
    collector.  ``SSLContext.sslsocket_class`` is the standard library's documented hook for this."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(s: MqttSettings) -> ssl.SSLContext | None:
    """What paho's ``tls_set`` builds from these files (certificates and host name verified;
    the system CAs when there is no ca_file), with :class:`ClosingSSLSocket`; None without TLS."""
    if not s.use_tls:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # as paho's: not create_default_context's stricter flags
    if s.ca_file:
        ctx.load_verify_locations(s.ca_file)
    else:
        ctx.load_default_certs()
    if s.cert_file:
        ctx.load_cert_chain(s.cert_file, s.key_file or None)
    ctx.sslsocket_class = ClosingSSLSocket
    return ctx


def explain_failure(s: MqttSettings, exc: BaseException, *, connected: bool) -> str:
    """One line for the log: what failed and which mqtt.* keys to check."""
    text = str(exc) or type(exc).__name__
    where = f"MQTT broker {s.describe()}"
    low = text.lower()
    if isinstance(exc, aiomqtt.MqttCodeError) and (
        "user name or password" in low or "not authorized" in low or "bad username" in low
    ):
        who = f"user {s.username!r}" if s.username else "anonymous connections"
        return (f"{where} refused the connection ({text}): {who} not accepted; "
                "check mqtt.username and mqtt.password / mqtt.password_file")
    if "ssl" in low or "certificate" in low or "tls" in low:
        return f"{where}: TLS failed ({text}); check mqtt.ca_file, mqtt.cert_file, mqtt.key_file"
    if connected or "disconnect" in low:
        return f"{where}: connection lost ({text}); reconnecting"
    return f"{where}: cannot connect ({text}); retrying"
