"""The `artmatch` command line: every command, one module per area (the top floor)."""
