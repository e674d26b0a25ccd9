"""The runtime: service lifecycle, live voices, config and its keys, output targets, systemd notify."""
