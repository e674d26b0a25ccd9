"""Commands: the registry (argument specs, validation), the catalog of every command, the MIDI
commands and the generated command docs."""
