"""`python -m policetrial`: the same command line as `policetrial`."""

from policetrial.cli.app import main

main()
