"""`python -m cli` runs the `artmatch` command."""

from cli.main import main

main()
