"""The `ems` command line: one entry point that wires ems/, design/ and adapters/ together."""
