"""The live server: command registry, voices, OSC, config, service (see docs/server.md)."""
