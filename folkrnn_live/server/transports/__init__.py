"""Transports: how commands arrive and feedback leaves (OSC, MQTT, MIDI in) and the feedback hub."""
