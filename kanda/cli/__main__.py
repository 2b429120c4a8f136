"""`python -m kanda.cli`: the console script `kanda`."""

from kanda.cli import main

main()
